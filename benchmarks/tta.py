"""Test-time augmentation for the image-only students: the mean logit over the 8 flips and 90-degree rotations of
each holdout image, against the single view, on a finished `lesion-run` folder. Reports pAUC and AUC with grouped
bootstrap intervals, the paired TTA-minus-single difference, and the cost (a phone runs the model 8 times).
Not a test.

Usage: python benchmarks/tta.py --data DATASET --run RUN_FOLDER [--models student_distilled student_plain] [--threads 2]"""
import argparse, json, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from sklearn.metrics import roc_auc_score
from lesion_fastai.data import read_lesions
from lesion_fastai.cache import ImageCache, float_batches
from lesion_fastai.models import load_bundle
from lesion_fastai.metrics import partial_auc, bootstrap_ci, paired_diff_ci, fmt_ci
from lesion_fastai.predict import dihedral_views

def view_logits(model, images, bs=64):
    "Logits of `model` for each of the 8 views (`dihedral_views`, the identity first): array (8, N)"
    with torch.no_grad():
        return np.concatenate([np.stack([model(torch.from_numpy(v)).numpy() for v in dihedral_views(x)])
                               for x in float_batches(images, bs)], 1)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True); ap.add_argument('--run', required=True); ap.add_argument('--preset', default=None)
    ap.add_argument('--models', nargs='+', default=['student_distilled', 'student_plain'])
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--n-boot', type=int, default=1000)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    run = Path(a.run); cfg = json.loads((run/'config.json').read_text())
    data = read_lesions(a.data, spec=a.preset or cfg.get('preset'))
    folds = pd.read_csv(run/'folds.csv'); idc = data.spec.id_col
    df = data.df.merge(folds[[idc, 'fold']], on=idc)
    hold = df[df.fold == cfg['holdout']].reset_index(drop=True)
    cache = ImageCache.build(hold.image_ref, cfg['size'], run/'tta_cache', ids=hold[idc])
    ims = np.asarray(cache.array)
    y, g = hold[data.spec.target_col].to_numpy(), hold[data.spec.group_col].to_numpy()
    P = pd.read_csv(run/'predictions.csv').set_index(idc)
    lines = [f"TTA on `{run}` (holdout fold {cfg['holdout']}: {len(hold)} images, {int(y.sum())} malignant; {cfg['size']} px; "
             f"{a.threads} CPU threads)", "", "| model | views | pAUC [95% CI] | AUC [95% CI] | ms/image | TTA - single pAUC [95% CI] |", "|---|---|---|---|---|---|"]
    for name in a.models:
        model, _ = load_bundle(run/'models'/name)
        f = run/f'tta_{name}.npz'
        if f.exists(): L, ms = np.load(f)['logits'], float(np.load(f)['ms'])       # computed before: reuse
        else:
            t0 = time.perf_counter(); L = view_logits(model, ims); ms = (time.perf_counter() - t0) / len(ims) * 1000
            np.savez(f, logits=L, ms=ms)
        single, tta = L[0], L.mean(0)
        ref = P.loc[hold[idc], name].to_numpy()
        print(f"{name}: single view vs the run's own holdout logits: max |diff| {np.abs(single - ref).max():.2e}", flush=True)
        d = paired_diff_ci(partial_auc, y, tta, single, g, a.n_boot)
        for label, s, cost, diff in (('1', single, ms / 8, ''), ('8 (flips x rot90)', tta, ms, fmt_ci(d, 4))):
            lines.append(f"| {name} | {label} | {fmt_ci(bootstrap_ci(partial_auc, y, s, g, a.n_boot))} | "
                         f"{fmt_ci(bootstrap_ci(roc_auc_score, y, s, g, a.n_boot))} | {cost:.1f} | {diff} |")
    print('\n'.join(lines))
    (run/'tta.md').write_text('\n'.join(lines) + '\n')

if __name__ == '__main__': main()
