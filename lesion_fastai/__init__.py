__version__ = "0.2.3"

import warnings as _warnings
# fastai.layers compiles two activations with `torch.jit.script` at import, which torch >= 2.10 flags as deprecated:
# a warning the user cannot act on, printed at every start of every CLI. This one message is silenced, and nothing is
# imported here: scoring a photo (`lesion-predict`) loads neither torch nor fastai.
_warnings.filterwarnings('ignore', message=r'.*torch\.jit\.script.*deprecated', category=FutureWarning)
