"""Benchmark: does training with phone-quality degradations narrow the drop on degraded images? (HAM10000)

Two image-only students (tf_efficientnet_lite0), identical but for `PhoneDegrade(p)` in the training augmentation,
trained on the lesion-grouped pool (folds 1-4, optionally a random subset of lesions for CPU budgets) and scored on
the holdout fold 0 clean and under every degradation at severities 1, 3, 5.
Writes robustness.csv / robustness.png / robustness.md to --out. Not a test.

Usage: python benchmarks/robustness.py --data ../shared/data/ham10000 --out runs/robust --size 64 --epochs 2"""
import argparse, json, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from lesion_fastai.data import read_lesions
from lesion_fastai.splits import add_folds
from lesion_fastai.cache import ImageCache
from lesion_fastai.train import train_model
from lesion_fastai.degrade import robustness, plot_robustness

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True); ap.add_argument('--out', default='runs/robust')
    ap.add_argument('--size', type=int, default=64); ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--epochs', type=int, default=2); ap.add_argument('--freeze-epochs', type=int, default=1)
    ap.add_argument('--p', type=float, default=0.5, help='PhoneDegrade probability per training image')
    ap.add_argument('--train-lesions', type=int, default=None, help='random subset of pool lesions (CPU budget)')
    ap.add_argument('--seed', type=int, default=0); ap.add_argument('--num-workers', type=int, default=0)
    a = ap.parse_args()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    data = add_folds(read_lesions(a.data, spec='ham10000'), 5, a.seed)
    df = data.df
    hold = (df.fold == 0).to_numpy()
    keep = ~hold
    if a.train_lesions:
        pool_lesions = pd.Series(df.lesion_id[~hold].unique()).sample(a.train_lesions, random_state=a.seed)
        keep = ~hold & df.lesion_id.isin(pool_lesions).to_numpy()
    sub = data.subset(keep | hold)
    is_hold = (sub.df.fold == 0).to_numpy()
    cache = ImageCache.build(sub.df.image_ref, a.size, out/'cache', ids=sub.ids)
    imgs, y = np.asarray(cache.array[np.flatnonzero(is_hold)]), sub.df.malignant.values[is_hold]
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f'CPU ({torch.get_num_threads()} threads)'
    tabs, secs = {}, {}
    for name, p in (('plain augmentation', 0.), (f'+ PhoneDegrade(p={a.p})', a.p)):
        t0 = time.time()
        learn, _ = train_model(sub, is_hold, 'student', size=a.size, bs=a.bs, epochs=a.epochs, freeze_epochs=a.freeze_epochs,
                               seed=a.seed, cache=cache, degrade_p=p, num_workers=a.num_workers, path=out)
        secs[name] = time.time() - t0
        model = learn.model.eval().cpu()
        def predict(x):
            with torch.no_grad(): return model(x).numpy()
        tabs[name] = robustness(predict, imgs, y, seed=a.seed)
        print(name, f"trained in {secs[name]:.0f}s; clean pAUC {tabs[name].pauc.iloc[0]:.4f}", flush=True)
    R = pd.concat([t.assign(model=k) for k, t in tabs.items()])
    R.to_csv(out/'robustness.csv', index=False)
    plot_robustness(tabs, 'pauc', out/'robustness.png')
    W = R.pivot_table(index=['degradation', 'severity'], columns='model', values='pauc', sort=False)
    cols = list(tabs)
    W['difference'] = W[cols[1]] - W[cols[0]]
    deg = W.drop(index='clean', level=0)
    L = [f"Robustness benchmark, HAM10000 on {dev}: {a.size}px, {a.freeze_epochs} frozen + {a.epochs} unfrozen epochs, "
         f"train = {int((~is_hold).sum())} pool images ({'all' if not a.train_lesions else a.train_lesions} lesions), "
         f"holdout fold 0 = {int(is_hold.sum())} images ({int(y.sum())} malignant). pAUC (max 0.2):", "",
         "| degradation | severity | " + " | ".join(cols) + " | difference |", "|---|---|---|---|---|"]
    for (k, s), r in W.iterrows(): L.append(f"| {k} | {s} | {r[cols[0]]:.4f} | {r[cols[1]]:.4f} | {r['difference']:+.4f} |")
    L += ["", f"Mean over all degraded conditions: {deg[cols[0]].mean():.4f} vs {deg[cols[1]].mean():.4f} "
          f"(difference {deg['difference'].mean():+.4f}); at severity 5: {deg.xs(5, level=1)[cols[0]].mean():.4f} vs "
          f"{deg.xs(5, level=1)[cols[1]].mean():.4f}. Training time: " + ", ".join(f"{k} {v:.0f}s" for k, v in secs.items()) + ".",
          "", f"Command: python benchmarks/robustness.py --data {a.data} --out {a.out} --size {a.size} --epochs {a.epochs} "
          f"--freeze-epochs {a.freeze_epochs} --p {a.p}" + (f" --train-lesions {a.train_lesions}" if a.train_lesions else "")]
    (out/'robustness.md').write_text('\n'.join(L) + '\n')
    print('\n'.join(L))

if __name__ == '__main__': main()
