"""Benchmark: one phone student for several sources, judged inside each source and on sources it never saw. Not a test.

Sources: the PAD-UFES-20 smartphone photos (5 patient-grouped folds, seed 0: `common.pad_ufes20`), the
real ISIC 2024 tiles (5 folds by image: no patient ids) and, never trained on, the HAM10000 holdout (fold 0 of its
lesion-grouped folds, 1,697 dermoscopy images, HAM10000's labels). For each fold k, one plain student per recipe
(`train_model`, the `phone` recipe's training: Lite0, 128 px, 1 + 20 epochs, lr 8e-3, positives 3x, no simulated
degradations, one view) is trained on the recipe's sources minus their fold k, and scores fold k of PAD-UFES-20 and of
the tiles, and the HAM10000 holdout; scores are pooled over folds. A source a recipe does not train on is a source it
never saw. Recipes (`--recipes`):

- `pad`: the photos alone (today's `phone` recipe, plain);
- `pad_tiles`: the photos and the tiles, the tiles drawn at `--tiles-weight` of their rows each epoch;
- `tiles`: the tiles alone (drawn the same way): the photos are then a source it never saw;
- `pad_capture`, `pad_capture_mild`: the photos alone, each training image degraded with probability 0.5 by one of the
  simulated capture degradations (`PhoneDegradeCallback`) at a severity drawn from 1-5 (the dermoscopy recipe's) or
  from 1-3 (milder);
- `pad_tiles_capture_mild`: the photos and the tiles, with the milder degradations.

`--robustness` also scores each fold's photos under JPEG, defocus, low resolution and colour cast at severity 3 (the
report's robustness measure, `degrade.robustness`), and the summary gives the share of the clean pAUC each recipe keeps.

Each fold's logits are kept in `--work` (a rerun skips them). The summary (`--out`) gives AUC and pAUC with 95%
bootstrap intervals per source (grouped by patient for the photos, by lesion for HAM10000), and paired differences.

    python benchmarks/sources.py --recipes pad pad_tiles --out benchmarks/results/sources.md
    python benchmarks/sources.py --recipes pad pad_capture pad_capture_mild --robustness --out benchmarks/results/capture.md
"""
import argparse, json, time
from pathlib import Path
import numpy as np, pandas as pd, torch
import fastprogress.fastprogress as fpb
from lesion_fastai.callbacks import plain_output
from lesion_fastai.data import read_lesions, find_shared
from lesion_fastai.sources import combine_sources
from lesion_fastai.splits import add_folds
from lesion_fastai.train import train_model
from lesion_fastai.models import save_bundle
from lesion_fastai.cache import ImageCache
from lesion_fastai.pipeline import bundle_logits
from lesion_fastai.metrics import roc_auc, partial_auc, bootstrap_ci, paired_diff_ci, fmt_ci
from lesion_fastai.report import md_table
from lesion_fastai.degrade import PhoneDegradeCallback, robustness
from lesion_fastai.runtimes import load_runtime
from common import ham10000, pad_ufes20, train_args

RECIPES = dict(pad=('pad_ufes20',), pad_tiles=('pad_ufes20', 'isic2024_tiles'), tiles=('isic2024_tiles',), pad_capture=('pad_ufes20',),
               pad_capture_mild=('pad_ufes20',), pad_tiles_capture_mild=('pad_ufes20', 'isic2024_tiles'))
CAPTURE = dict(pad_capture=dict(p=0.5, severity=(1, 5)), pad_capture_mild=dict(p=0.5, severity=(1, 3)),
               pad_tiles_capture_mild=dict(p=0.5, severity=(1, 3)))   # simulated capture degradations while training
ROBUST_KINDS = ('jpeg', 'defocus', 'lowres', 'color_cast')             # the report's robustness measure, at severity 3

def sources(seed=0):
    "PAD-UFES-20 and the tiles in one table with each source's own folds, and the HAM10000 holdout"
    pad = pad_ufes20(seed=seed)
    tiles = add_folds(read_lesions(find_shared('isic2024_tiles'), progress=False), 5, seed)
    both = combine_sources([pad, tiles])
    both.df['fold'] = np.concatenate([pad.df.fold.to_numpy(), tiles.df.fold.to_numpy()])
    ham = ham10000(seed=0)
    return both, ham.subset((ham.df.fold == 0).to_numpy())

def fold_logits(a, both, ham, ham_images, recipe, k):
    "Train recipe `recipe` without fold k; its logits on fold k of both sources and on the HAM10000 holdout (cached)"
    f = Path(a.work)/f'{recipe}_s{a.seed}_f{k}.npz'
    if f.exists(): return dict(np.load(f))
    t0 = time.time()
    keep = both.df.source.isin(RECIPES[recipe]).to_numpy() | (both.df.fold == k).to_numpy()   # training sources + every fold k
    d = both.subset(keep)
    w = {'isic2024_tiles': a.tiles_weight} if 'isic2024_tiles' in RECIPES[recipe] else None
    learn, logits = train_model(d, (d.df.fold == k).to_numpy(), 'student', a.arch, size=a.size, bs=a.bs, epochs=a.epochs,
                                freeze_epochs=a.freeze_epochs, lr=a.lr, pos_weight=a.pos_weight, alpha=0.,
                                degrade_p=PhoneDegradeCallback(**CAPTURE[recipe]) if recipe in CAPTURE else 0.,
                                seed=a.seed, cache=Path(a.work)/'cache', path=Path(a.work)/'train', source_weights=w,
                                valid_every=0, checkpoint=f'ck_{recipe}_fold{k}')   # scored once, after training; resumable by epoch
    b = Path(a.work)/'models'/f'{recipe}_s{a.seed}_f{k}'
    save_bundle(learn, b)
    v = d.df[d.df.fold == k]
    out = dict(ids=v.image_id.to_numpy().astype(str), logits=logits, ham=bundle_logits(b, ham_images), seconds=time.time() - t0)
    np.savez(f, **out)
    print(f"{recipe} fold {k}: {out['seconds']:.0f} s", flush=True)
    return out

def fold_robustness(a, both, recipe, k):
    "The fold model's pAUC on fold k's photos, clean and under each of `ROBUST_KINDS` at severity 3 (cached)"
    f = Path(a.work)/f'{recipe}_s{a.seed}_f{k}_robust.csv'
    if f.exists(): return pd.read_csv(f).rename(columns={'kind': 'degradation'})   # kept before the column's rename
    v = both.subset(((both.df.source == 'pad_ufes20') & (both.df.fold == k)).to_numpy())
    ims = np.asarray(ImageCache.build(v.df.image_ref, a.size, Path(a.work)/'cache', ids=v.ids).array)
    t = robustness(load_runtime(Path(a.work)/'models'/f'{recipe}_s{a.seed}_f{k}', threads=a.threads), ims, v.df.target.to_numpy(),
                   degradations=list(ROBUST_KINDS), severities=(3,), seed=a.seed).assign(recipe=recipe, fold=k)
    t.to_csv(f, index=False)
    return t

def robust_lines(R:pd.DataFrame) -> str:
    "Per recipe: the mean over folds of the clean pAUC and of each degraded pAUC, and the share of the clean pAUC kept"
    M = R.groupby(['recipe', 'degradation'], sort=False).pauc.mean().unstack()
    rows = [dict(recipe=r, clean=f"{M.loc[r, 'clean']:.4f}", **{k: f"{M.loc[r, k]:.4f} ({M.loc[r, k] / M.loc[r, 'clean']:.0%})" for k in ROBUST_KINDS},
                 kept=f"{np.mean([M.loc[r, k] for k in ROBUST_KINDS]) / M.loc[r, 'clean']:.0%}") for r in M.index]
    return ("\n\nCapture robustness on the photos (pAUC of each fold model on its own fold, mean over the 5 folds; in brackets the "
            "share of the clean pAUC; 'kept': the mean over the four degradations, as the report measures it):\n\n" + md_table(pd.DataFrame(rows)))

def summary(a, both, ham, res, R=None):
    "The markdown summary: each recipe on each source, and the paired differences"
    y = both.df.set_index('image_id').target; g = both.df.set_index('image_id').group
    yh, gh = ham.df.malignant.to_numpy(), ham.df.lesion_id.to_numpy()
    oof = {r: pd.concat([pd.Series(o['logits'], index=o['ids']) for o in folds]) for r, folds in res.items()}
    hamz = {r: np.mean([o['ham'] for o in folds], axis=0) for r, folds in res.items()}   # the mean logit of the 5 fold models
    rows, cols = [], {}
    for src, name in (('pad_ufes20', 'PAD-UFES-20 photos (folds)'), ('isic2024_tiles', 'ISIC 2024 tiles (folds)')):
        ids = both.df.image_id[both.df.source == src].to_numpy()
        for r in res:
            z = oof[r].loc[ids].to_numpy(); yy = y.loc[ids].to_numpy(); gg = g.loc[ids].to_numpy()
            cols[(src, r)] = (yy, z, gg)
            seen = src in RECIPES[r]
            rows.append(dict(source=name, recipe=r, seen='yes' if seen else '**no**', images=len(ids), malignant=int(yy.sum()),
                             AUC=fmt_ci(bootstrap_ci(roc_auc, yy, z, gg, n_boot=a.n_boot)), pAUC=fmt_ci(bootstrap_ci(partial_auc, yy, z, gg, n_boot=a.n_boot), 4)))
    for r in res:
        cols[('ham10000', r)] = (yh, hamz[r], gh)
        rows.append(dict(source='HAM10000 holdout (dermoscopy)', recipe=r, seen='**no**', images=len(yh), malignant=int(yh.sum()),
                         AUC=fmt_ci(bootstrap_ci(roc_auc, yh, hamz[r], gh, n_boot=a.n_boot)), pAUC=fmt_ci(bootstrap_ci(partial_auc, yh, hamz[r], gh, n_boot=a.n_boot), 4)))
    diffs = []
    rs = list(res)
    for src in ('pad_ufes20', 'isic2024_tiles', 'ham10000'):
        for i in range(len(rs)):
            for j in range(i + 1, len(rs)):
                yy, z1, gg = cols[(src, rs[j])]; _, z0, _ = cols[(src, rs[i])]
                diffs.append(dict(source=src, difference=f"{rs[j]} minus {rs[i]}", AUC=fmt_ci(paired_diff_ci(roc_auc, yy, z1, z0, gg, n_boot=a.n_boot)),
                                  pAUC=fmt_ci(paired_diff_ci(partial_auc, yy, z1, z0, gg, n_boot=a.n_boot), 4)))
    secs = {r: sum(float(o['seconds']) for o in folds) for r, folds in res.items()}
    head = (f"# One phone student, several sources\n\n`python benchmarks/sources.py --recipes {' '.join(res)} --tiles-weight {a.tiles_weight}"
            f" --seed {a.seed}`, {time.strftime('%Y-%m-%d')}, this machine's 2 CPU cores. Plain students (no teacher), "
            f"{a.arch}, {a.size} px, 1 + {a.epochs} epochs at lr {a.lr}, positives {a.pos_weight}x, one view; each image scored by the "
            f"model of its own fold (5 folds per source), HAM10000 by the mean logit of the 5 fold models. 'seen': whether the "
            f"recipe trains on that source (on its other folds). Intervals: 95% bootstrap over patients (photos), tiles "
            f"(tiles: no patient ids) and lesions (HAM10000), {a.n_boot} replicates. Training time (5 folds): "
            + ', '.join(f'{r} {s / 60:.0f} min' for r, s in secs.items()) + ".\n")
    Path(a.out).write_text(head + "\n" + md_table(pd.DataFrame(rows)) + "\n\nPaired differences (same images):\n\n" + md_table(pd.DataFrame(diffs))
                           + (robust_lines(R) if R is not None else '') + "\n")
    print(Path(a.out).read_text())

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--recipes', nargs='+', default=['pad', 'pad_tiles'], choices=list(RECIPES))
    ap.add_argument('--folds', nargs='+', type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument('--tiles-weight', type=float, default=0.2, help="tiles drawn per epoch, as a fraction of their training rows")
    ap.add_argument('--work', default='runs/sources', help="folder for the caches, models and each fold's logits")
    ap.add_argument('--out', default='benchmarks/results/sources.md')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--robustness', action='store_true', help="also score each fold's photos under simulated capture degradations")
    train_args(ap, arch='tf_efficientnet_lite0', size=128, bs=32, epochs=20, freeze_epochs=1, lr=8e-3, pos_weight=3., seed=0, n_boot=1000)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if plain_output(): fpb.NO_BAR, fpb.ConsoleProgressBar.fill = True, ''   # a log file: epoch lines only
    Path(a.work).mkdir(parents=True, exist_ok=True)
    both, ham = sources(a.seed)
    ham_images = np.asarray(ImageCache.build(ham.df.image_ref, a.size, Path(a.work)/'cache', ids=ham.ids).array)
    res = {r: [] for r in a.recipes}
    for k in a.folds:                            # fold by fold, every recipe: a partial run compares like with like
        for r in a.recipes: res[r].append(fold_logits(a, both, ham, ham_images, r, k))
    R = pd.concat([fold_robustness(a, both, r, k) for k in a.folds for r in a.recipes]) if a.robustness else None
    if len(a.folds) == 5: summary(a, both, ham, res, R)

if __name__ == '__main__': main()
