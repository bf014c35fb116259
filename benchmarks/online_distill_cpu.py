"""The README's notebook recipe on HAM10000, on this machine's CPU: a FiLM teacher on image + metadata, then image-only
students taught online (`student_learner(dls, teacher=teacher, ...)`), each `fine_tune(epochs)` at 128 px, with the
same data, budget and seed (or longer for the students: --student-epochs; distillation is said to need patience). Variants of the distillation: `plain` (no teacher), `logit` (the README's default),
`feat` (+ feature transfer, weight 1), `featatt` (+ feature and attention transfer, weight 1 each), `feat10`
(+ feature transfer, weight 10), and logit distillation with more weight on the teacher: `a08` (alpha 0.8, T 2),
`a08t1` (alpha 0.8, T 1), `a09t4` (alpha 0.9, T 4).

Choose with --valid-fold 1..4: trained on the other pool folds, scored on that fold; the holdout (fold 0 of the
HAM10000 benchmark's 5 lesion-grouped folds, seed 0) is never read. The teacher of a fold and seed is trained once
and kept in --work, so later calls with other variants reuse it. Prints pAUC, AUC and training seconds per model and
appends a line per model to --log. Not a test.

--lr (the peak of `fine_tune`, fastai's default 2e-3) and --pos-weight (positives' weight in the loss, none by default)
apply to the teacher and every student alike; a teacher trained with other settings is not reused.

Usage: python benchmarks/online_distill_cpu.py --data ../shared/data/ham10000 --valid-fold 1 --epochs 3 \
           --variants logit feat featatt plain [--seed 0] [--lr 2e-3] [--pos-weight 3] [--work runs/online_cpu]"""
import argparse, json, time
from pathlib import Path
import torch
from sklearn.metrics import roc_auc_score
from fastai.torch_core import set_seed
from lesion_fastai.data import read_lesions
from lesion_fastai.splits import add_folds
from lesion_fastai.cache import ImageCache
from lesion_fastai.datablock import lesion_dataloaders
from lesion_fastai.models import teacher_learner, student_learner
from lesion_fastai.train import TrainClock, predict_logits
from lesion_fastai.metrics import partial_auc

VARIANTS = dict(plain=dict(teacher=False, alpha=0.), logit=dict(), feat=dict(feature_weight=1.),
                featatt=dict(feature_weight=1., attention_weight=1.), feat10=dict(feature_weight=10.),
                a08=dict(alpha=0.8), a08t1=dict(alpha=0.8, T=1.), a09t4=dict(alpha=0.9, T=4.))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True); ap.add_argument('--valid-fold', type=int, default=1)
    ap.add_argument('--size', type=int, default=128); ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--epochs', type=int, default=3); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--student-epochs', type=int, default=None, help="the students' unfrozen epochs (default: --epochs, the teacher's)")
    ap.add_argument('--variants', nargs='+', default=['logit', 'feat'], choices=list(VARIANTS))
    ap.add_argument('--lr', type=float, default=2e-3); ap.add_argument('--pos-weight', type=float, default=None)
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--cache', default='.cache')
    ap.add_argument('--work', default='runs/online_cpu'); ap.add_argument('--log', default='benchmarks/results/online_distill_cpu.jsonl')
    a = ap.parse_args()
    if a.valid_fold == 0: ap.error('--valid-fold 0 is the holdout: choose on pool folds 1-4')
    torch.set_num_threads(a.threads)
    data = add_folds(read_lesions(a.data, spec='ham10000', progress=False), 5, 0)
    pool = data.subset((data.df.fold != 0).to_numpy())                  # the holdout is never read
    cache = ImageCache.build(pool.df.image_ref, a.size, a.cache, ids=pool.ids, progress=False)
    y = pool.df[pool.spec.target_col][pool.df.fold == a.valid_fold].to_numpy()
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    def dls():
        set_seed(a.seed)
        d = lesion_dataloaders(pool, a.valid_fold, size=a.size, bs=a.bs, cache=cache, meta=True); d.train.rng.seed(a.seed)
        return d
    def score(name, learn, clock, t0, epochs):
        z = predict_logits(learn)
        r = dict(model=name, valid_fold=a.valid_fold, seed=a.seed, size=a.size, epochs=f'1+{epochs}', lr=a.lr, pos_weight=a.pos_weight,
                 pauc=round(float(partial_auc(y, z)), 4), auc=round(float(roc_auc_score(y, z)), 4),
                 train_s=round(clock.seconds['train']), total_s=round(time.time() - t0))
        print(json.dumps(r), flush=True)
        with open(a.log, 'a') as f: f.write(json.dumps(r) + '\n')
    tname = f'teacher_f{a.valid_fold}_s{a.seed}_{a.size}px_e{a.epochs}' + ('' if (a.lr, a.pos_weight) == (ap.get_default('lr'), ap.get_default('pos_weight')) else f'_lr{a.lr:g}_pw{a.pos_weight}')
    set_seed(a.seed); clock, t0 = TrainClock(), time.time()
    teacher = teacher_learner(dls(), 'tf_efficientnet_lite0', fusion='film', pos_weight=a.pos_weight, path=work, cbs=[clock])
    if (work/'models'/f'{tname}.pth').exists(): teacher.load(tname); print(f"teacher: {tname} reused")
    else: teacher.fine_tune(a.epochs, a.lr); teacher.save(tname); score('teacher', teacher, clock, t0, a.epochs)
    for v in a.variants:
        kw = dict(VARIANTS[v]); use_t = kw.pop('teacher', True)
        set_seed(a.seed); clock, t0 = TrainClock(), time.time()
        s = student_learner(dls(), 'tf_efficientnet_lite0', teacher=teacher if use_t else None, pos_weight=a.pos_weight, path=work, cbs=[clock], **kw)
        se = a.student_epochs or a.epochs
        s.fine_tune(se, a.lr)
        score(f'student_{v}', s, clock, t0, se)

if __name__ == '__main__': main()
