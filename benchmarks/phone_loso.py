"""The whole `phone` recipe (teachers, distillation, simulated capture, two sides) on a source it never saw: a run of
`lesion-run --phone --leave-out` on the three shared folders, one source left out at a time, its students scored on
the source left out; or a finished run that never trained on that source (`--run`). Not a test.

    python benchmarks/phone_loso.py --left pad_ufes20                           # trains on the tiles + the HAM10000 pool (2 h 3 min)
    python benchmarks/phone_loso.py --left isic2024_tiles                       # trains on the photos + the HAM10000 pool (51 min)
    python benchmarks/phone_loso.py --left ham10000 --run runs/phone_three      # the three-folder --phone run never trained on HAM10000
    python benchmarks/phone_loso.py --summary                                   # the table of what has been scored

The scores are those of `benchmarks/sources.py --loso` (every image of the photos or the tiles, HAM10000's holdout fold of
seed 0), so the plain students of `sources_loso.md` are the comparison; one view each, as there. Every scored image's
logits go into `benchmarks/results/phone_loso_scores.csv.gz`, from which `--summary` rebuilds the table (and, once each
source is in it, the mean over the three with a joint bootstrap).
"""
import argparse, json, os, re, time
from pathlib import Path
import numpy as np, pandas as pd
from lesion_fastai.config import RunConfig, apply_recipe
from lesion_fastai.data import read_lesions, find_shared
from lesion_fastai.sources import folder_specs
from lesion_fastai.phone import phone_recipe
from lesion_fastai.run import without_source, source_logits, STUDENTS
from lesion_fastai.pipeline import run_pipeline
from lesion_fastai.metrics import roc_auc, partial_auc, fmt_ci
from lesion_fastai.report import md_table
from common import ham10000
from sources import ci, paired_ci, mean_over, md_tables

NAMES = ['pad_ufes20', 'isic2024_tiles', 'ham10000']
MODELS = STUDENTS
TITLES = dict(pad_ufes20='PAD-UFES-20 photos', isic2024_tiles='ISIC 2024 tiles', ham10000='HAM10000 holdout (dermoscopy)')

def left_images(left):
    "The images scored when `left` is left out, as in `benchmarks/sources.py --loso`: every one, HAM10000's fold 0 of seed 0"
    d = ham10000(seed=0) if left == 'ham10000' else read_lesions(find_shared(left), progress=False)
    if left == 'ham10000': d = d.subset((d.df.fold == 0).to_numpy())
    return d

def score(run, left, work):
    "Both students of `run` on the images of `left` (`run.source_logits`, one view at 128 px): their logits, cached in `work`"
    f = work/f'logits_{left}_{run.name}.npz'
    have = [m for m in MODELS if (run/'models'/f'{m}.json').exists()]   # a student not trained (a stopped run): no scores
    z = dict(np.load(f)) if f.exists() else {}
    if z and all(m in z for m in have): return z   # cached, unless a student was trained since
    t0 = time.time()
    out = source_logits(run, left_images(left), RunConfig(size=128, tta=False), work/'cache', models=have)
    out['seconds'] = time.time() - t0
    np.savez(f, **out)
    return out

def train_without(left, work):
    "The `lesion-run --phone --leave-out` run without `left` (its recipe, its weights; no robustness table, one view)"
    paths = [os.path.relpath(find_shared(n)) for n in NAMES]    # as typed on the command line from the repository
    specs = folder_specs(paths)
    cfg = RunConfig(data=','.join(paths), tta=False, robustness=False)
    cfg, kept = apply_recipe(cfg, phone_recipe(cfg, {s.name: s.kind for s in specs.values()}), {'tta', 'robustness'})
    out = work/f'without_{left}'
    t0 = time.time()
    run_pipeline(without_source(cfg, NAMES.index(left), specs), out, 'phone', kept)
    return out, time.time() - t0

def keep_scores(scores:Path, left, run, trained, z):
    "Put `left`'s per-image scores into the `scores` table (replacing that source's earlier ones): the table rebuilds without the run folders"
    new = pd.DataFrame(dict(left_out=left, trained_on=trained, run=str(run), image_id=z['ids'], y=z['y'], group=z['g'],
                            **{m: z.get(m, np.nan) for m in MODELS}))
    old = pd.read_csv(scores, dtype={'image_id': str, 'group': str}) if scores.exists() else None
    (new if old is None else pd.concat([old[old.left_out != left], new])).to_csv(scores, index=False, float_format='%.6g')

def interval(text:str) -> tuple:
    "'0.721 [0.675, 0.762]' as (0.721, 0.675, 0.762)"
    return tuple(float(v) for v in re.findall(r'-?\d+\.\d+', text)[:3])

def approx_mean(cells:list, nd:int) -> str:
    "The mean of independent per-source estimates 'point [lo, hi]', its 95% interval from their half-widths (normal approximation)"
    t = np.array([interval(c) for c in cells])
    se = np.sqrt((((t[:, 2] - t[:, 1]) / 3.92) ** 2).sum()) / len(t)
    m = t[:, 0].mean()
    return fmt_ci((m, m - 1.96 * se, m + 1.96 * se), nd)

def summary(scores:Path, md:Path, n_boot):
    "The table of every source scored: from the per-image scores where kept, else the rows the table had (their scores were lost)"
    t = pd.read_csv(scores, dtype={'image_id': str, 'group': str}) if scores.exists() else pd.DataFrame(columns=['left_out'])
    old = md_tables(md.read_text()) if md.exists() else []
    rows, diffs, carried = [], [], []
    for left in NAMES:
        d = t[t.left_out == left]
        if len(d):
            y, g = d.y.to_numpy(), d.group.to_numpy()
            for m in [m for m in MODELS if d[m].notna().all()]:
                rows.append(dict(left_out=TITLES[left], model=m.replace('student_', 'student, '), trained_on=d.trained_on.iloc[0], run=d.run.iloc[0],
                                 images=len(y), malignant=int(y.sum()), AUC=ci(roc_auc, y, d[m], g, n_boot), pAUC=ci(partial_auc, y, d[m], g, n_boot, 4)))
            if d[list(MODELS)].notna().all().all(): diffs.append({'left_out': TITLES[left],
                          'AUC, distilled minus plain': paired_ci(roc_auc, y, d.student_distilled, d.student_plain, g, n_boot),
                          'pAUC, distilled minus plain': paired_ci(partial_auc, y, d.student_distilled, d.student_plain, g, n_boot, 4)})
        elif len(old) == 2 and (old[0].left_out == TITLES[left]).any():    # scored before its scores were kept: the row as it was printed
            rows += old[0][old[0].left_out == TITLES[left]].to_dict('records'); diffs += old[1][old[1].left_out == TITLES[left]].to_dict('records')
            carried.append(TITLES[left])
    R, D = pd.DataFrame(rows), pd.DataFrame(diffs)
    if len(R):     # each source left out: the mean over the three, for a student scored on all three
        exact = not carried and t[list(MODELS)].notna().all().all()
        if exact:
            Y, G = t.y.to_numpy(), t.group.to_numpy()
            M = np.column_stack([t.student_distilled, t.student_plain, t.left_out.map(NAMES.index)])
        for j, m in enumerate(('student, distilled', 'student, plain')):
            r = R[R.model == m]
            if len(r) < len(NAMES): continue
            R.loc[len(R)] = dict(left_out='**mean of the three**', model=m, trained_on='', run='', images=int(r.images.astype(int).sum()),
                                 malignant=int(r.malignant.astype(int).sum()),
                                 AUC=ci(mean_over(roc_auc, j, 2, 3), Y, M, G, n_boot) if exact else approx_mean(list(r.AUC), 3),
                                 pAUC=ci(mean_over(partial_auc, j, 2, 3), Y, M, G, n_boot, 4) if exact else approx_mean(list(r.pAUC), 4))
        if len(D) == len(NAMES): D.loc[len(D)] = {'left_out': '**mean of the three**', **{c: (ci(lambda yt, M_, m=m: mean_over(m, 0, 2, 3)(yt, M_) - mean_over(m, 1, 2, 3)(yt, M_), Y, M, G, n_boot, nd)
                                                                    if exact else approx_mean(list(D[c]), nd))
                                                                for c, m, nd in (('AUC, distilled minus plain', roc_auc, 3), ('pAUC, distilled minus plain', partial_auc, 4))}}
    note = ''.join(f" The {m.replace('_', ' ')} without {TITLES[n]} was not trained (the run stopped before it): no row." for n in NAMES
                   for m in MODELS if ((t.left_out == n) & t[m].isna()).any()) if len(t) else ''
    if carried: note += (f" The per-image scores of {' and '.join(carried)} were not kept (their run folders are gone): their rows are as first printed, "
                        "and the mean over the three takes its interval from the three sources' intervals (independent images; a normal approximation).")
    text = ("# The whole phone recipe on sources it never saw\n\n`python benchmarks/phone_loso.py` (see its docstring for each row's command), "
            f"{time.strftime('%Y-%m-%d')}, this machine's 2 CPU cores. The `phone` recipe's students (teachers from the sources with "
            "metadata, distillation, simulated capture on half the images, colour constancy, two sides), each trained without the "
            "source it is scored on; one view; the same images as `sources_loso.md`, whose plain students (no teacher, clean "
            "images, one side) are the comparison. 95% bootstrap intervals over patients, tiles or lesions; the per-image scores are in "
            f"`{scores.name}`.{note}\n\n" + md_table(R) + "\n\nPaired, over the same images:\n\n" + md_table(D) + "\n")
    md.write_text(text); print(text)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--left', choices=NAMES, help="the source left out")
    ap.add_argument('--run', default=None, help="a finished run that never trained on --left, instead of training one")
    ap.add_argument('--work', default='runs/loso_three')
    ap.add_argument('--md', default='benchmarks/results/phone_loso.md')
    ap.add_argument('--scores', default='benchmarks/results/phone_loso_scores.csv.gz', help="every scored image's logits (kept with the results)")
    ap.add_argument('--n-boot', type=int, default=1000)
    ap.add_argument('--summary', action='store_true', help="only the table of what has been scored")
    a = ap.parse_args()
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    if not a.summary:
        run, secs = (Path(a.run), None) if a.run else train_without(a.left, work)
        trained = [s.name for s in folder_specs(json.loads((run/'config.json').read_text())['data']).values()]   # each folder read once
        if a.left in trained: raise SystemExit(f"{run} trained on {a.left}")
        z = score(run, a.left, work)
        keep_scores(Path(a.scores), a.left, run, '+'.join(trained), z)
        print(f"[phone_loso] {a.left}: trained {'(a finished run)' if secs is None else f'{secs / 60:.1f} min'}, scored in {float(z['seconds']):.0f} s")
    summary(Path(a.scores), Path(a.md), a.n_boot)

if __name__ == '__main__': main()
