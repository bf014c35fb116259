#!/usr/bin/env bash
# Build the docs site and README without Quarto: nbdev's processed notebooks (`nbdev-proc-nbs` -> _proc/) rendered
# to HTML pages in _site/ by nbconvert, and README.md from the processed index notebook.
# Where Quarto is installed, `nbdev-docs` builds the real site instead (see .github/workflows/deploy.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
$BIN/nbdev-proc-nbs --force >/dev/null
rm -rf _site && mkdir -p _site
n=0
for nb in _proc/*.ipynb; do
  $BIN/jupyter nbconvert --log-level ERROR --to html --template lab --output-dir _site "$nb"
  n=$((n+1))
done
$BIN/python tools/site_index.py _site
$BIN/jupyter nbconvert --log-level ERROR --to markdown --stdout _proc/index.ipynb > README.md.new
mv README.md.new README.md
echo "docs: $n pages in _site/, README.md from nbs/index.ipynb"
