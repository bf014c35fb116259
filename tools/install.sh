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
# the phone app's runtime (onnxruntime-web, from npm, pinned: lesion_fastai.app.ORT_VERSION) into ./node_modules, and
# a browser for its tests (Debian's chromium, driven by Playwright's Python package; Playwright's own download is not used)
if command -v npm >/dev/null; then npm install --prefix . --no-save --no-audit --no-fund --loglevel=error "onnxruntime-web@$("$VENV/bin/python" -c 'from lesion_fastai.app import ORT_VERSION; print(ORT_VERSION)')"; else echo "npm not found: lesion-app will need it (or \$LESION_ORT_DIR)"; fi
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) || echo "chromium could not be installed: the app's browser tests need it"
fi
"$VENV/bin/python" -c "import lesion_fastai, fastai, timm, torch; print('lesion_fastai', lesion_fastai.__version__, '| fastai', fastai.__version__, '| timm', timm.__version__, '| torch', torch.__version__); from lesion_fastai.export import available_formats; print('export formats:', ', '.join(available_formats()))"
