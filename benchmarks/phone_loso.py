"""The whole `phone` recipe (teachers, distillation, simulated capture, two sides) on a source it never saw: a run of
`lesion-run --phone --leave-out` on the three shared folders, one source left out at a time, its students scored on
the source left out; or a finished run that never trained on that source (`--run`). Not a test.

    python benchmarks/phone_loso.py --left isic2024_tiles                       # trains on the photos + the HAM10000 pool (51 min)
    python benchmarks/phone_loso.py --left ham10000 --run runs/phone_three      # the three-folder --phone run never trained on HAM10000
    python benchmarks/phone_loso.py --summary                                   # the table of what has been scored

The scores are those of `benchmarks/sources.py --loso` (every image of the photos or the tiles, HAM10000's holdout fold of
seed 0), so the plain students of `sources_loso.md` are the comparison; one view each, as there.
"""
import argparse, json, os, time
from pathlib import Path
import numpy as np, pandas as pd
from lesion_fastai.config import RunConfig, apply_recipe
from lesion_fastai.data import read_lesions, find_shared
from lesion_fastai.cache import ImageCache
from lesion_fastai.sources import folder_specs
from lesion_fastai.phone import phone_recipe
from lesion_fastai.run import without_source
from lesion_fastai.pipeline import run_pipeline, bundle_logits
from lesion_fastai.metrics import roc_auc, partial_auc
from lesion_fastai.report import md_table
from common import ham10000
from sources import ci, paired_ci

NAMES = ['pad_ufes20', 'isic2024_tiles', 'ham10000']
TITLES = dict(pad_ufes20='PAD-UFES-20 photos', isic2024_tiles='ISIC 2024 tiles', ham10000='HAM10000 holdout (dermoscopy)')

def left_images(left):
    "The images scored when `left` is left out, as in `benchmarks/sources.py --loso`: every one, HAM10000's fold 0 of seed 0"
    d = ham10000(seed=0) if left == 'ham10000' else read_lesions(find_shared(left), progress=False)
    if left == 'ham10000': d = d.subset((d.df.fold == 0).to_numpy())
    return d

def score(run, left, work):
    "Both students of `run` on the images of `left`: their logits, cached in `work`"
    f = work/f'logits_{left}_{run.name}.npz'
    if f.exists(): return dict(np.load(f))
    d = left_images(left)
    x = np.asarray(ImageCache.build(d.df.image_ref, 128, work/'cache', ids=d.ids, progress=False).array)
    t0 = time.time()
    z = {m: bundle_logits(run/'models'/m, x) for m in ('student_distilled', 'student_plain')}
    out = dict(ids=np.asarray(d.ids, dtype=str), y=d.df[d.spec.target_col].to_numpy().astype(int), g=np.asarray(d.df[d.spec.group_col], dtype=str),
               seconds=time.time() - t0, **z)
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

def summary(work, md, n_boot):
    rows, diffs = [], []
    for f in sorted(work.glob('logits_*.npz')):
        left = next(n for n in NAMES if f.name.startswith(f'logits_{n}_'))
        z = dict(np.load(f)); meta = json.loads((work/f'{f.stem}.json').read_text())
        for m in ('student_distilled', 'student_plain'):
            rows.append(dict(left_out=TITLES[left], model=m.replace('student_', 'student, '), trained_on=meta['trained_on'], run=meta['run'],
                             images=len(z['y']), malignant=int(z['y'].sum()), AUC=ci(roc_auc, z['y'], z[m], z['g'], n_boot),
                             pAUC=ci(partial_auc, z['y'], z[m], z['g'], n_boot, 4)))
        diffs.append(dict(left_out=TITLES[left], **{'AUC, distilled minus plain': paired_ci(roc_auc, z['y'], z['student_distilled'], z['student_plain'], z['g'], n_boot),
                                                    'pAUC, distilled minus plain': paired_ci(partial_auc, z['y'], z['student_distilled'], z['student_plain'], z['g'], n_boot, 4)}))
    text = ("# The whole phone recipe on sources it never saw\n\n`python benchmarks/phone_loso.py` (see its docstring for each row's command), "
            f"{time.strftime('%Y-%m-%d')}, this machine's 2 CPU cores. The `phone` recipe's students (teachers from the sources with "
            "metadata, distillation, simulated capture on half the images, colour constancy, two sides), each trained without the "
            "source it is scored on; one view; the same images as `sources_loso.md`, whose plain students (no teacher, clean "
            "images, one side) are the comparison. 95% bootstrap intervals over patients, tiles or lesions.\n\n"
            + md_table(pd.DataFrame(rows)) + "\n\nPaired, over the same images:\n\n" + md_table(pd.DataFrame(diffs)) + "\n")
    md.write_text(text); print(text)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--left', choices=NAMES, help="the source left out")
    ap.add_argument('--run', default=None, help="a finished run that never trained on --left, instead of training one")
    ap.add_argument('--work', default='runs/loso_three')
    ap.add_argument('--md', default='benchmarks/results/phone_loso.md')
    ap.add_argument('--n-boot', type=int, default=1000)
    ap.add_argument('--summary', action='store_true', help="only the table of what has been scored")
    a = ap.parse_args()
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    if not a.summary:
        run, secs = (Path(a.run), None) if a.run else train_without(a.left, work)
        trained = [s.name for s in folder_specs(json.loads((run/'config.json').read_text())['data']).values()]   # each folder read once
        if a.left in trained: raise SystemExit(f"{run} trained on {a.left}")
        z = score(run, a.left, work)
        trained = '+'.join(trained)
        (work/f'logits_{a.left}_{run.name}.json').write_text(json.dumps(dict(run=str(run), trained_on=trained, train_seconds=secs, score_seconds=float(z['seconds']))))
    summary(work, Path(a.md), a.n_boot)

if __name__ == '__main__': main()
