__version__ = "0.1.0"

import warnings as _warnings
with _warnings.catch_warnings():
    # fastai.layers compiles two activations with `torch.jit.script` at import, which torch >= 2.10 flags as deprecated:
    # a warning the user cannot act on, printed at every start of every CLI. Import it once here, quietly.
    _warnings.filterwarnings('ignore', message=r'.*torch\.jit\.script.*deprecated', category=FutureWarning)
    try: import fastai.layers
    except ImportError: pass
