"""Benchmark: the phone-photo students reading each photo at two sides (128 px and 144 px inside the model), as the
files a phone runs. Not a test.

For each PAD-UFES-20 fold, the kept student of --seed (`benchmarks/phone_photos.py`, never trained on that fold) is
made to read at --sides (`models.read_at`), saved as a bundle and exported by `export_student` (ExecuTorch float32 and
int8, ONNX; int8 from post-training quantisation of one copy of the network per side, `quantize.unshare_sides`),
calibrated on 256 photos of the other folds and checked on the fold's photos, with the same checks `lesion-run`
ships by. Then each file's probabilities with test-time augmentation (8 flips and rotations, mean logit, as the app
and `lesion-predict` read by default) are pooled over the folds: AUC and pAUC of what the phone would run, against
PyTorch's and against the one-side student. Last, `Predictor` on one fold's export reads a 24 MP JPEG on one core.

Usage: python benchmarks/phone_scales_export.py --seed 0 --out benchmarks/results/phone_scales_export.md"""
import argparse, time, tempfile
from pathlib import Path
import numpy as np, pandas as pd, torch
from PIL import Image
from lesion_fastai.cache import ImageCache, float_batches
from lesion_fastai.models import save_bundle, read_at
from lesion_fastai.export import export_student, export_table
from lesion_fastai.runtimes import load_runtime, FORMATS, available_formats
from lesion_fastai.predict import Predictor, tta_logits
from lesion_fastai.metrics import roc_auc, partial_auc, bootstrap_ci, paired_diff_ci, fmt_ci, logit
from lesion_fastai.report import md_table
from common import pad_ufes20
import phone_photos as pp

def log(msg): print(f"[phone_scales_export] {time.strftime('%H:%M:%S')} {msg}", flush=True)

def tta_probs(fn, x) -> np.ndarray:
    "Mean-logit TTA of a runtime `fn` (float batch -> probabilities) on uint8 images `x`, as logits"
    return np.concatenate([tta_logits(lambda v: logit(fn(v)), b) for b in float_batches(x, 32)])

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--students', default='runs/phone_photos/in_distill_clean_e20_lr8_s{seed}_f{fold}.pth')
    ap.add_argument('--seed', type=int, default=0); ap.add_argument('--sides', type=int, nargs='+', default=[128, 144])
    ap.add_argument('--work', default='runs/phone_scales_export'); ap.add_argument('--cache', default='.cache')
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--n-boot', type=int, default=1000)
    ap.add_argument('--out', default='benchmarks/results/phone_scales_export.md')
    a = ap.parse_args(); torch.set_num_threads(a.threads)
    pad = pad_ufes20(); df = pad.df
    y, g, fold = df.malignant.to_numpy(), df.patient_id.to_numpy(), df.fold.to_numpy()
    X = np.asarray(ImageCache.build(df.image_ref, a.sides[0], a.cache, ids=pad.ids, progress=False).array)
    fmts = [f for f in ('pte', 'pte_int8', 'onnx') if f in available_formats()]
    Z = {k: np.zeros(len(y)) for k in ['one side (PyTorch)', 'two sides (PyTorch)', *fmts]}
    rows, work = [], Path(a.work)
    for f in range(5):
        v = fold == f
        m = pp.saved_student(torch.load(a.students.format(seed=a.seed, fold=f), weights_only=True))
        Z['one side (PyTorch)'][v] = pp.student_logits(m, X[v], tta=True)
        m.lesion_cfg = dict(kind='student', arch=m.backbone.arch, size=a.sides[0], mean=m.backbone.norm.mean.flatten().tolist(),
                            std=m.backbone.norm.std.flatten().tolist(), degrade=None)
        read_at(m, a.sides); b = save_bundle(m, work/f'fold{f}'/'student')
        calib = X[~v][np.sort(np.random.default_rng(f).choice((~v).sum(), 256, replace=False))]
        t0 = time.time()
        rep = export_student(b, work/f'fold{f}'/'export', calib, X[v], y[v], g[v], formats=fmts, n_boot=200)
        log(f"fold {f}: exported in {time.time() - t0:.0f} s\n{export_table(rep).to_string()}")
        for k, r in rep['exports'].items(): rows.append(dict(fold=f, file=r.get('file', 'student.pth'), size_mb=r.get('size_mb'),
                                                             ms_1thread=r.get('latency_ms_1thread'), max_abs_diff=r.get('max_abs_diff'),
                                                             pauc=r.get('pauc'), auc=r.get('auc'), passes=r.get('passes', True)))
        Z['two sides (PyTorch)'][v] = pp.student_logits(m, X[v], tta=True)
        for k in fmts: Z[k][v] = tta_probs(load_runtime(work/f'fold{f}'/'export'/FORMATS[k][0], threads=1), X[v])
    one = Z['one side (PyTorch)']
    tab = pd.DataFrame([dict(reading=k, **{'AUC [95% CI]': fmt_ci(bootstrap_ci(roc_auc, y, z, g, a.n_boot)),
                                           'pAUC [95% CI]': fmt_ci(bootstrap_ci(partial_auc, y, z, g, a.n_boot), 4),
                                           'minus one side, AUC': fmt_ci(paired_diff_ci(roc_auc, y, z, one, g, a.n_boot)) if k != 'one side (PyTorch)' else '',
                                           'minus one side, pAUC': fmt_ci(paired_diff_ci(partial_auc, y, z, one, g, a.n_boot), 4) if k != 'one side (PyTorch)' else ''})
                        for k, z in Z.items()])
    files = pd.DataFrame(rows).groupby('file').agg(size_mb=('size_mb', 'mean'), ms_1thread=('ms_1thread', 'median'), max_abs_diff=('max_abs_diff', 'max'),
                                                   passes=('passes', 'sum')).reset_index().round(dict(size_mb=2, ms_1thread=1, max_abs_diff=4))
    # a 24 MP phone photo through lesion-predict's code path, one core, on fold 0's export
    torch.set_num_threads(1)
    big = Path(tempfile.mkdtemp())/'photo_24mp.jpg'
    Image.open(df.image_ref.iloc[0]).convert('RGB').resize((6000, 4000), Image.BILINEAR).save(big, quality=92)
    times = {}
    for tta in (True, False):
        pr = Predictor(work/'fold0'/'export', backend='executorch', tta=tta)   # runtimes run on one thread; pr.predict([big])
        ts = []
        for _ in range(5): t0 = time.perf_counter(); pr.predict([big]); ts.append(time.perf_counter() - t0)
        times['TTA (8 views)' if tta else 'one view'] = f"{1000 * np.median(ts):.0f} ms"
    text = (f"# Phone photos: the students read at {' and '.join(map(str, a.sides))} px, as phone files\n\n"
            f"`python benchmarks/phone_scales_export.py --seed {a.seed} --sides {' '.join(map(str, a.sides))} --out {a.out}`, "
            f"{time.strftime('%Y-%m-%d')}, this machine's CPU. {len(y)} PAD-UFES-20 photos of {len(set(g))} patients, each scored by "
            f"the kept student of seed {a.seed} of its own fold (5 patient-grouped folds), with test-time augmentation (8 views, mean logit); "
            f"pooled over the folds; 95% grouped bootstrap over patients ({a.n_boot} replicates), differences paired over the same photos.\n\n"
            + md_table(tab) + "\n\nThe files, over the 5 folds (size: mean; latency at batch 1 on one thread: median; largest probability "
            "difference from PyTorch on one view; passes: folds whose file passed `export_student`'s check):\n\n" + md_table(files)
            + f"\n\nA 24 MP JPEG (6000 x 4000) through `Predictor` (what `lesion-predict` runs), fold 0's export, ExecuTorch, one thread, "
            f"median of 5: " + ', '.join(f'{k} {v}' for k, v in times.items()) + ".\n")
    Path(a.out).write_text(text); print(text)

if __name__ == '__main__': main()
