#!/usr/bin/env bash
# Set up everything in a fresh virtual environment `.venv` (or $VENV): torch from the pinned release, then the
# package with its dev extras (nbdev, nbconvert, test tools), editable.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first and pinned: a bare `torch` requirement can pull a newer multi-GB build from PyPI
"$VENV/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
# executorch pinned to the release built against that torch (an unpinned one may pull another torch)
"$VENV/bin/python" -m pip install -q -e ".[dev]" "executorch==1.5.1" "torch==2.14.1"
"$VENV/bin/python" -c "import lesion_fastai, fastai, timm, torch; print('lesion_fastai', lesion_fastai.__version__, '| fastai', fastai.__version__, '| timm', timm.__version__, '| torch', torch.__version__); from lesion_fastai.export import available_formats; print('export formats:', ', '.join(available_formats()))"
