"""Benchmark: the phone-ready student on real images (HAM10000). Not a test.

A teacher (image + metadata) is trained on the lesion-grouped pool (folds 1-4); its logits on the *clean* pool images
are the soft targets. Students (image only, tf_efficientnet_lite0), identical but for the probability `p` of a
phone-quality degradation per training image (`PhoneDegradeCallback`; p=0 is the student trained on clean photos
only), learn from them and are scored on the untouched holdout fold 0, clean and under each degradation. Every model
is saved as a bundle in --out/models and skipped when it exists, so a killed run resumes where it stopped.

Writes phone_student.md / phone_student.csv to --out.

Usage: python benchmarks/phone_student.py --data ../shared/data/ham10000 --out runs/phone --size 128 --epochs 3 --ps 0 0.5"""
import argparse, json, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from lesion_fastai.data import read_lesions, LesionData
from lesion_fastai.splits import add_folds
from lesion_fastai.cache import ImageCache
from lesion_fastai.datablock import lesion_test_dl
from lesion_fastai.train import train_model, predict_logits
from lesion_fastai.models import save_bundle, load_bundle
from lesion_fastai.degrade import robustness, DEGRADATIONS

PHONE4 = ['jpeg', 'defocus', 'lowres', 'color_cast']   # the four kinds the phone-readiness target is stated on

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True); ap.add_argument('--out', default='runs/phone')
    ap.add_argument('--size', type=int, default=128); ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--epochs', type=int, default=3, help='unfrozen epochs of each student')
    ap.add_argument('--teacher-epochs', type=int, default=None, help='unfrozen epochs of the teacher (default: --epochs)')
    ap.add_argument('--freeze-epochs', type=int, default=1)
    ap.add_argument('--ps', type=float, nargs='+', default=[0., 0.5], help='degradation probabilities, one student each')
    ap.add_argument('--alpha', type=float, default=0.5); ap.add_argument('--T', type=float, default=2.0)
    ap.add_argument('--severities', type=float, nargs='+', default=[3.])
    ap.add_argument('--seed', type=int, default=0); ap.add_argument('--num-workers', type=int, default=0)
    a = ap.parse_args()
    out = Path(a.out); (out/'models').mkdir(parents=True, exist_ok=True)
    data = add_folds(read_lesions(a.data, spec='ham10000'), 5, a.seed)
    df = data.df
    hold = (df.fold == 0).to_numpy()
    cache = ImageCache.build(df.image_ref, a.size, out/'cache', ids=data.ids)
    imgs, y = np.asarray(cache.array[np.flatnonzero(hold)]), df.malignant.values[hold]
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f'CPU ({torch.get_num_threads()} threads)'
    common = dict(size=a.size, bs=a.bs, epochs=a.epochs, freeze_epochs=a.freeze_epochs, seed=a.seed, cache=cache,
                  num_workers=a.num_workers, path=out)
    times_f = out/'times.json'
    times = json.loads(times_f.read_text()) if times_f.exists() else {}
    def log(msg): print(f"[phone] {time.strftime('%H:%M:%S')} {msg}", flush=True)

    soft_f = out/'teacher_soft.npy'
    if not soft_f.exists():
        log("teacher (image + metadata) on the pool")
        t0 = time.time()
        learn, _ = train_model(data, hold, 'teacher', **dict(common, epochs=a.teacher_epochs or a.epochs))
        save_bundle(learn, out/'models'/'teacher')
        pool = data.subset(~hold)
        soft = predict_logits(learn, lesion_test_dl(learn.dls, pool))     # validation transforms: the clean images
        np.save(soft_f, soft); times['teacher'] = time.time() - t0; times_f.write_text(json.dumps(times))
    d = LesionData(df.copy(), data.spec, data.source)
    d.df['soft'] = np.nan; d.df.loc[~hold, 'soft'] = np.load(soft_f)

    tabs = {}
    for p in a.ps:
        name = f'student_p{round(p * 100):02d}'      # no '.' in the name: bundles add their own suffixes
        if not (out/'models'/f'{name}.pth').exists():
            log(f"{name}: distilled student, degradation probability {p}")
            t0 = time.time()
            learn, _ = train_model(d, hold, 'student', soft_col='soft', alpha=a.alpha, T=a.T, degrade_p=p, **common)
            save_bundle(learn, out/'models'/name); times[name] = time.time() - t0; times_f.write_text(json.dumps(times))
        tf = out/f'{name}_robustness.csv'
        if not tf.exists():
            model = load_bundle(out/'models'/name)[0]
            def predict(x):
                with torch.no_grad(): return model(x).numpy()
            robustness(predict, imgs, y, severities=a.severities, seed=a.seed).to_csv(tf, index=False)
        tabs[name] = pd.read_csv(tf).rename(columns={'kind': 'degradation'})   # tables kept before the column's rename
        log(f"{name}: clean pAUC {tabs[name].pauc.iloc[0]:.4f}")

    R = pd.concat([t.assign(model=k) for k, t in tabs.items()]); R.to_csv(out/'phone_student.csv', index=False)
    names = list(tabs)
    L = [f"Phone-ready student, HAM10000 on {dev}: {a.size} px, {a.freeze_epochs} frozen + {a.epochs} unfrozen epochs "
         f"(teacher: {a.freeze_epochs} + {a.teacher_epochs or a.epochs}), "
         f"distilled (alpha {a.alpha}, T {a.T}) from a teacher's logits on the clean pool images; pool {int((~hold).sum())} "
         f"images, holdout fold 0 {int(hold.sum())} images ({int(y.sum())} malignant). pAUC (max 0.2) / AUC:", "",
         "| condition | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for (k, s), _ in R[R.model == names[0]].set_index(['degradation', 'severity']).iterrows():
        cells = [tabs[n].set_index(['degradation', 'severity']).loc[(k, s)] for n in names]
        L.append(f"| {k}{'' if k == 'clean' else f' (severity {s:g})'} | " + " | ".join(f"{c.pauc:.4f} / {c.auc:.3f}" for c in cells) + " |")
    for n in names:
        t = tabs[n].set_index('degradation'); clean = t.loc['clean', 'pauc']
        for sev in a.severities:
            m4 = t[t.severity == sev].loc[PHONE4, 'pauc'].mean(); m8 = t[t.severity == sev].pauc.mean()
            L.append(f"\n{n}: severity {sev:g}, mean pAUC over {', '.join(PHONE4)} {m4:.4f} = {m4 / clean:.0%} of clean "
                     f"({clean:.4f}); over all {len(DEGRADATIONS)} kinds {m8:.4f} = {m8 / clean:.0%}. Training {times.get(n, float('nan')):.0f} s.")
    L += ["", f"Teacher training {times.get('teacher', float('nan')):.0f} s.",
          f"Command: python benchmarks/phone_student.py --data {a.data} --out {a.out} --size {a.size} --epochs {a.epochs} "
          f"{f'--teacher-epochs {a.teacher_epochs} ' if a.teacher_epochs else ''}"
          f"--freeze-epochs {a.freeze_epochs} --ps {' '.join(f'{p:g}' for p in a.ps)}"]
    (out/'phone_student.md').write_text('\n'.join(L) + '\n'); print('\n'.join(L))

if __name__ == '__main__': main()
