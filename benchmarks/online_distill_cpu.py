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

Once the settings are chosen, score them once on the holdout: --valid-fold 0 --final (teacher and students trained on
the whole pool; --teacher-seed 0 lets students of several seeds learn from one teacher). Every model's validation
logits are kept in --work/logits_f{fold}.csv; --summary prints the fold's table with paired bootstrap intervals
(distilled minus plain student of the same seed, and minus the teacher) and writes it to --work/summary_f{fold}.md.

Usage: python benchmarks/online_distill_cpu.py --data ../shared/data/ham10000 --valid-fold 1 --epochs 3 \
           --variants logit feat featatt plain [--seed 0] [--lr 2e-3] [--pos-weight 3] [--work runs/online_cpu]
       python benchmarks/online_distill_cpu.py --data ../shared/data/ham10000 --valid-fold 0 --final --variants logit plain \
           --lr 4e-3 --pos-weight 3 --seed 1 --teacher-seed 0;  ... --valid-fold 0 --final --summary"""
import argparse, json, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from sklearn.metrics import roc_auc_score
from fastai.torch_core import set_seed
from lesion_fastai.data import read_lesions
from lesion_fastai.splits import add_folds
from lesion_fastai.cache import ImageCache
from lesion_fastai.datablock import lesion_dataloaders
from lesion_fastai.models import teacher_learner, student_learner
from lesion_fastai.train import predict_logits
from lesion_fastai.callbacks import TrainClockCallback
from lesion_fastai.metrics import partial_auc, roc_auc, paired_diff_ci, fmt_ci
from common import ham10000

VARIANTS = dict(plain=dict(teacher=False, alpha=0.), logit=dict(), feat=dict(feature_weight=1.),
                featatt=dict(feature_weight=1., attention_weight=1.), feat10=dict(feature_weight=10.),
                a08=dict(alpha=0.8), a08t1=dict(alpha=0.8, T=1.), a09t4=dict(alpha=0.9, T=4.))

def logits_table(work:Path, fold:int) -> pd.DataFrame:
    f = work/f'logits_f{fold}.csv'
    return pd.read_csv(f) if f.exists() else pd.DataFrame()

def save_logits(work:Path, fold:int, rows:pd.DataFrame, spec, col:str, z):
    "Add one model's validation logits as column `col` of work/logits_f{fold}.csv (one row per validation image)"
    T = logits_table(work, fold); ids = rows[spec.id_col].astype(str).to_numpy()
    if T.empty: T = pd.DataFrame(dict(image_id=ids, lesion_id=rows[spec.group_col].to_numpy(), target=rows[spec.target_col].to_numpy()))
    if list(T.image_id.astype(str)) != list(ids): raise ValueError(f"{work}/logits_f{fold}.csv holds other images")
    T[col] = np.asarray(z).ravel(); f = work/f'logits_f{fold}.csv'
    T.to_csv(f.with_suffix('.tmp'), index=False); f.with_suffix('.tmp').replace(f)

def summary(work:Path, fold:int):
    "Each model's pAUC and AUC per seed, and the distilled students' paired differences to the plain students and to the teacher"
    T = logits_table(work, fold)
    if T.empty: raise SystemExit(f"{work}/logits_f{fold}.csv: no saved logits for fold {fold}")
    y, g = T.target.to_numpy(), T.lesion_id.to_numpy()
    models = {}
    for c in T.columns[3:]: models.setdefault(c.rsplit('_s', 1)[0], []).append(c)
    L = [f"fold {fold}: {len(T)} images, {int(y.sum())} malignant", "", "| model | pAUC per seed (mean) | AUC per seed (mean) |", "|---|---|---|"]
    for m, cols in models.items():
        p, q = [partial_auc(y, T[c]) for c in cols], [roc_auc(y, T[c]) for c in cols]
        L.append(f"| {m} | {', '.join(f'{v:.4f}' for v in p)} ({np.mean(p):.4f}) | {', '.join(f'{v:.3f}' for v in q)} ({np.mean(q):.3f}) |")
    L += ["", "Paired differences in pAUC (mean over the seeds both have; 95% grouped bootstrap interval, 1,000 resamples of lesions):"]
    seed_of = lambda c: c.rsplit('_s', 1)[1]
    teacher = next((c[0] for m, c in models.items() if m.startswith('teacher')), None)
    for m, cols in models.items():
        if not m.startswith('student_') or m.startswith('student_plain'): continue
        plain = {seed_of(c): c for c in models.get('student_plain_e' + m.rsplit('_e', 1)[1], [])}   # same epochs
        both = [c for c in cols if seed_of(c) in plain]
        if both:
            d = paired_diff_ci(partial_auc, y, T[both].to_numpy(), T[[plain[seed_of(c)] for c in both]].to_numpy(), g)
            L.append(f"- {m} minus the plain student: {fmt_ci(d, 4)} ({len(both)} seeds)")
        if teacher:
            d = paired_diff_ci(partial_auc, y, T[cols].to_numpy(), T[teacher].to_numpy(), g)
            L.append(f"- {m} minus the teacher ({teacher}): {fmt_ci(d, 4)} ({len(cols)} seeds)")
    text = '\n'.join(L); print(text); (work/f'summary_f{fold}.md').write_text(text + '\n')

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
    ap.add_argument('--teacher-seed', type=int, default=None, help="the teacher's seed (default: --seed); students of several seeds can share one teacher")
    ap.add_argument('--final', action='store_true', help='with --valid-fold 0: train on the whole pool and score the holdout, once the settings are chosen')
    ap.add_argument('--summary', action='store_true', help="train nothing: print the fold's table from the saved logits")
    a = ap.parse_args()
    if a.valid_fold == 0 and not a.final: ap.error('--valid-fold 0 is the holdout: choose on pool folds 1-4 (--final once the choice is made)')
    if a.final and a.valid_fold != 0: ap.error('--final scores the holdout: use it with --valid-fold 0')
    ts = a.seed if a.teacher_seed is None else a.teacher_seed
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    if a.summary: return summary(work, a.valid_fold)
    torch.set_num_threads(a.threads)
    data = ham10000(a.data)
    pool = data if a.final else data.subset((data.df.fold != 0).to_numpy())   # the holdout is read only with --final
    cache = ImageCache.build(pool.df.image_ref, a.size, a.cache, ids=pool.ids, progress=False)
    is_valid = (pool.df.fold == a.valid_fold).to_numpy()
    y = pool.df[pool.spec.target_col][is_valid].to_numpy()
    def dls(seed):
        set_seed(seed)
        d = lesion_dataloaders(pool, a.valid_fold, size=a.size, bs=a.bs, cache=cache, meta=True); d.train.rng.seed(seed)
        return d
    def score(name, learn, clock, t0, epochs, seed=a.seed):
        z = predict_logits(learn)
        save_logits(work, a.valid_fold, pool.df[is_valid], pool.spec, f'{name}_e{epochs}_s{seed}', z)
        r = dict(model=name, valid_fold=a.valid_fold, seed=seed, size=a.size, epochs=f'1+{epochs}', lr=a.lr, pos_weight=a.pos_weight,
                 pauc=round(float(partial_auc(y, z)), 4), auc=round(float(roc_auc_score(y, z)), 4),
                 train_s=round(clock.seconds['train']), total_s=round(time.time() - t0))
        print(json.dumps(r), flush=True)
        with open(a.log, 'a') as f: f.write(json.dumps(r) + '\n')
    tname = f'teacher_f{a.valid_fold}_s{ts}_{a.size}px_e{a.epochs}' + ('' if (a.lr, a.pos_weight) == (ap.get_default('lr'), ap.get_default('pos_weight')) else f'_lr{a.lr:g}_pw{a.pos_weight}')
    set_seed(ts); clock, t0 = TrainClockCallback(), time.time()
    teacher = teacher_learner(dls(ts), 'tf_efficientnet_lite0', fusion='film', pos_weight=a.pos_weight, path=work, cbs=[clock])
    if (work/'models'/f'{tname}.pth').exists():
        teacher.load(tname); print(f"teacher: {tname} reused")
        if f'teacher_e{a.epochs}_s{ts}' not in logits_table(work, a.valid_fold):     # a teacher trained before logits were kept
            save_logits(work, a.valid_fold, pool.df[is_valid], pool.spec, f'teacher_e{a.epochs}_s{ts}', predict_logits(teacher))
    else: teacher.fine_tune(a.epochs, a.lr); teacher.save(tname); score('teacher', teacher, clock, t0, a.epochs, ts)
    for v in a.variants:
        kw = dict(VARIANTS[v]); use_t = kw.pop('teacher', True)
        set_seed(a.seed); clock, t0 = TrainClockCallback(), time.time()
        s = student_learner(dls(a.seed), 'tf_efficientnet_lite0', teacher=teacher if use_t else None, pos_weight=a.pos_weight, path=work, cbs=[clock], **kw)
        se = a.student_epochs or a.epochs
        s.fine_tune(se, a.lr)
        score(f'student_{v}', s, clock, t0, se)

if __name__ == '__main__': main()
