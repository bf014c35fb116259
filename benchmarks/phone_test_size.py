"""Benchmark: the phone-photo students read at another input side than they were trained at (128 px). Not a test.

The kept fold students of `benchmarks/phone_photos.py` (one per seed and PAD-UFES-20 fold, each scored on the photos
of its own fold, never trained on) read the photos decoded at each side of --sizes (centre square, bilinear, as the
app does), on one view and with test-time augmentation (the mean logit of the 8 flips and 90-degree rotations, what
the app and lesion-predict run by default); --upscale also scores the 128 px images resized up inside the model (is
it the object's apparent size or the photo's detail that counts?); --multi the mean logit over all sides read (e.g.
--sizes 128 --upscale 144 --multi: what `config.PHONE`'s `scales` ships, the 128 px image and its 144 px resize inside the model). Pooled out-of-fold AUC and pAUC per seed, a 95% grouped bootstrap
over patients of the mean over seeds, and paired differences against the first side (same photos, seeds matched).
The students are fully convolutional with global pooling, so any side runs through them unchanged.

Usage: python benchmarks/phone_test_size.py --students 'runs/phone_photos/in_distill_clean_e20_lr8_s{seed}_f{fold}.pth' --sizes 128 144 160
Results: benchmarks/results/phone_test_size.md (--out)."""
import argparse, time
from pathlib import Path
import numpy as np, pandas as pd, torch, torch.nn.functional as F
from lesion_fastai.cache import ImageCache
from lesion_fastai.metrics import roc_auc, partial_auc, bootstrap_ci, paired_diff_ci, fmt_ci
from common import pad_ufes20, seeds_mean
import phone_photos as pp
from lesion_fastai.report import md_table

def log(msg): print(f"[phone_test_size] {time.strftime('%H:%M:%S')} {msg}", flush=True)

def fold_logits(m, x, tta=False, up=None) -> np.ndarray:
    "Logits of `m` on uint8 images `x`, one view or the 8-view TTA, optionally resized up to side `up` inside the model"
    return pp.student_logits(m if not up else lambda t: m(F.interpolate(t, size=(up, up), mode='bilinear', align_corners=False)), x, tta=tta)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--students', default='runs/phone_photos/in_distill_clean_e20_lr8_s{seed}_f{fold}.pth', help='path pattern of the kept students, with {seed} and {fold}')
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2]); ap.add_argument('--sizes', type=int, nargs='+', default=[128, 144, 160])
    ap.add_argument('--upscale', type=int, nargs='*', default=[], help='also: the first side\'s images resized up to these sides inside the model')
    ap.add_argument('--multi', action='store_true', help='also: the mean logit over all the sides read, --sizes and --upscale (multi-scale; with TTA, 8 views per side)')
    ap.add_argument('--cache', default='.cache')
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--n-boot', type=int, default=1000)
    ap.add_argument('--out', default='benchmarks/results/phone_test_size.md')
    a = ap.parse_args(); torch.set_num_threads(a.threads)
    pad = pad_ufes20(); df = pad.df
    y, g, fold = df.malignant.to_numpy(), df.patient_id.to_numpy(), df.fold.to_numpy()
    X = {s: np.asarray(ImageCache.build(df.image_ref, s, a.cache, ids=pad.ids, progress=False).array) for s in a.sizes}
    base = a.sizes[0]
    views = [(f'{s} px', s, None) for s in a.sizes] + [(f'{base} px up to {u}', base, u) for u in a.upscale]
    Z = {(v, t): np.zeros((len(y), len(a.seeds))) for v, _, _ in views for t in (False, True)}
    for j, seed in enumerate(a.seeds):
        for f in range(5):
            m, v_ = pp.saved_student(torch.load(a.students.format(seed=seed, fold=f), weights_only=True)), fold == f
            for name, s, up in views:
                for t in (False, True): Z[(name, t)][v_, j] = fold_logits(m, X[s][v_], t, up)
        log(f"seed {seed}: " + ', '.join(f"{n}{' TTA' if t else ''} AUC {roc_auc(y, Z[(n, t)][:, j]):.3f}" for n, _, _ in views for t in (False, True)))
    if a.multi:                     # every side read: the decoded --sizes and the --upscale ones
        name = ' + '.join(n for n, _, _ in views)
        for t in (False, True): Z[(name, t)] = np.mean([Z[(n, t)] for n, _, _ in views], 0)
        views.append((name, None, None))
    rows, diffs = [], []
    for name, _, _ in views:
        for t in (False, True):
            z = Z[(name, t)]
            rows.append({'input': name, 'views': '8 (TTA)' if t else '1',
                         'AUC per seed': ', '.join(f'{roc_auc(y, z[:, i]):.3f}' for i in range(z.shape[1])),
                         'AUC [95% CI]': fmt_ci(bootstrap_ci(seeds_mean(roc_auc), y, z, g, a.n_boot)),
                         'pAUC per seed': ', '.join(f'{partial_auc(y, z[:, i]):.4f}' for i in range(z.shape[1])),
                         'pAUC [95% CI]': fmt_ci(bootstrap_ci(seeds_mean(partial_auc), y, z, g, a.n_boot), 4)})
            ref = Z[(f'{base} px', t)]
            if name != f'{base} px':
                diffs.append(f"- {name} minus {base} px, {'TTA' if t else 'one view'}: AUC {fmt_ci(paired_diff_ci(roc_auc, y, z, ref, g, a.n_boot))}, "
                             f"pAUC {fmt_ci(paired_diff_ci(partial_auc, y, z, ref, g, a.n_boot), 4)}; higher AUC on "
                             f"{sum(roc_auc(y[fold == f], z[fold == f, i]) > roc_auc(y[fold == f], ref[fold == f, i]) for i in range(z.shape[1]) for f in range(5))} of {5 * z.shape[1]} folds")
    tab = pd.DataFrame(rows)
    head = (f"# Phone photos: the students read at other input sides\n\n`python benchmarks/phone_test_size.py --students '{a.students}' "
            f"--seeds {' '.join(map(str, a.seeds))} --sizes {' '.join(map(str, a.sizes))}{' --upscale ' + ' '.join(map(str, a.upscale)) if a.upscale else ''}{' --multi' if a.multi else ''} --out {a.out}`, "
            f"{time.strftime('%Y-%m-%d')}, this machine's CPU. {len(y)} PAD-UFES-20 photos of {len(set(g))} patients, each scored by the "
            f"student of its own fold (5 patient-grouped folds), pooled; intervals: 95% grouped bootstrap over patients "
            f"({a.n_boot} replicates) of the mean over seeds; differences paired over the same photos and seeds.\n\n")
    text = head + md_table(tab) + '\n\n' + '\n'.join(diffs) + '\n'
    Path(a.out).write_text(text); print(text)

if __name__ == '__main__': main()
