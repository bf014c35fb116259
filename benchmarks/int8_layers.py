"""Which layers an int8 ExecuTorch student keeps in float: each variant's pAUC, largest probability change and
one-thread latency against the float .pte, on three kinds of real (or demo) students, all on this machine's CPU:
the main job's distilled student (64 px, its holdout), a HAM10000 student at 128 px (the HAM10000 holdout fold 0,
1,697 images) and the five phone-photo students of the PAD-UFES-20 folds (128 px, out-of-fold, pooled). Each int8
file is calibrated on 256 training images (seed 0), as `export_student` does.

Usage: python benchmarks/int8_layers.py [--run runs/demo] [--ham runs/phone_photos/ham_noakiec_128px_e3.pth]
       [--pad 'runs/phone_photos/in_distill_clean_s1_f{}.pth']   (the students of the retired benchmarks/phone_photos.py: benchmarks/README.md)"""
import argparse, json, tempfile
from pathlib import Path
import numpy as np, pandas as pd, torch
from common import ham10000, pad_ufes20
from lesion_fastai.models import ImageModel, load_bundle
from lesion_fastai.backbones import create_backbone
from lesion_fastai.cache import ImageCache, float_batches
from lesion_fastai.quantize import quantize_ptq
from lesion_fastai.export import export_pte
from lesion_fastai.runtimes import load_runtime, latency_ms
from lesion_fastai.metrics import partial_auc

VARIANTS = {'stem, blocks.0.0, head (former default)': ('conv_stem', 'blocks.0.0', 'head'),
            '+ blocks.1 (default)': ('conv_stem', 'blocks.0.0', 'blocks.1', 'head'),
            '+ blocks.1, blocks.2': ('conv_stem', 'blocks.0.0', 'blocks.1', 'blocks.2', 'head')}
TMP = Path(tempfile.mkdtemp())

def lite0(state_dict_file):
    m = ImageModel(create_backbone('tf_efficientnet_lite0', pretrained=False))
    m.load_state_dict(torch.load(state_dict_file, weights_only=True), strict=False); return m.eval()

def score(models, size):
    "models: list of (model, calib uint8, val uint8, rows of the pooled labels); the pooled probabilities per variant and their latencies"
    P, ms = {}, {}
    for name, skip in [('float', None)] + list(VARIANTS.items()):
        parts = []
        for i, (m, calib, val) in enumerate(models):
            f = export_pte(m if skip is None else quantize_ptq(m, calib, skip), TMP/f'{i}.pte', size)
            parts.append(load_runtime(f)(np.concatenate(list(float_batches(val)))))
        P[name] = np.concatenate(parts)
        r = load_runtime(f); ms[name] = (np.median([latency_ms(r, size, n=200) for _ in range(3)]), f.stat().st_size / 1e6)
    return P, ms

def table(title, y, P, ms):
    rows = [f"### {title}", "", "| layers in float | pAUC | minus float | max prob. change | MB | ms/image (1 thread) |", "|---|---|---|---|---|---|"]
    for k, p in P.items():
        rows.append(f"| {k} | {partial_auc(y, p):.4f} | {partial_auc(y, p) - partial_auc(y, P['float']):+.4f} | "
                    f"{np.abs(p - P['float']).max():.3f} | {ms[k][1]:.2f} | {ms[k][0]:.2f} |")
    return rows + [""]

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--run', default='runs/demo'); ap.add_argument('--ham', default='runs/phone_photos/ham_noakiec_128px_e3.pth')
    ap.add_argument('--pad', default='runs/phone_photos/in_distill_clean_s1_f{}.pth'); ap.add_argument('--cache', default='.cache/bench128')
    ap.add_argument('--out', default='benchmarks/results/int8_layers.md')
    a = ap.parse_args(); torch.manual_seed(0)
    L = ["# int8 ExecuTorch students: which layers stay in float", "", f"`python benchmarks/int8_layers.py` on this machine ({torch.get_num_threads()} threads for the runs; latency on one thread, batch 1, median of 3 x 200 runs).", ""]
    run = Path(a.run)
    if (run/'state.json').exists():
        st, cfg = json.loads((run/'state.json').read_text()), json.loads((run/'config.json').read_text())
        cache = ImageCache(st['cache']['path']); folds = pd.read_csv(run/'folds.csv'); Pr = pd.read_csv(run/'predictions.csv')
        hold = (folds.fold == cfg['holdout']).to_numpy(); pool = np.flatnonzero(~hold)
        calib = np.asarray(cache.array[np.sort(np.random.default_rng(0).choice(pool, min(256, len(pool)), replace=False))])
        m = load_bundle(run/'models'/'student_distilled')[0].eval()
        P, ms = score([(m, calib, np.asarray(cache.array[np.flatnonzero(hold)]))], cfg['size'])
        L += table(f"The main job's distilled student ({cfg['size']} px, {run}, holdout {hold.sum()} images)", Pr.target[hold].values, P, ms)
    if Path(a.ham).exists():
        ham = ham10000(); hold = (ham.df.fold == 0).to_numpy()
        X = np.asarray(ImageCache.build(ham.df.image_ref, 128, a.cache, ids=ham.ids, progress=False).array)
        calib = X[np.sort(np.random.default_rng(0).choice(np.flatnonzero(~hold), 256, replace=False))]
        P, ms = score([(lite0(a.ham), calib, X[hold])], 128)
        L += table("A HAM10000 student at 128 px (the HAM10000 holdout, fold 0: 1,697 images)", ham.df.malignant.values[hold], P, ms)
    if Path(a.pad.format(0)).exists():
        pad = pad_ufes20(); X = np.asarray(ImageCache.build(pad.df.image_ref, 128, a.cache, ids=pad.ids, progress=False).array)
        f_ = pad.df.fold.values; models, order = [], []
        for k in range(5):
            tr, va = np.flatnonzero(f_ != k), np.flatnonzero(f_ == k)
            models.append((lite0(a.pad.format(k)), X[np.sort(np.random.default_rng(0).choice(tr, 256, replace=False))], X[va])); order.append(va)
        P, ms = score(models, 128)
        L += table("The five phone-photo students (PAD-UFES-20, 128 px, each on its own fold, pooled: 497 photos)", pad.df.malignant.values[np.concatenate(order)], P, ms)
    Path(a.out).write_text('\n'.join(L) + '\n'); print('\n'.join(L))

if __name__ == '__main__': main()
