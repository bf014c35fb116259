"""Benchmark: the phone student's files (ExecuTorch, ONNX, LiteRT when installed; float32 and int8) on real images. Not a test.

Takes a student trained by benchmarks/phone_student.py (HAM10000, lesion-grouped holdout fold 0), makes its int8
model by quantisation-aware fine-tuning (`qat_finetune`: fastai, with the student's own distillation and
degradations, on a subset of the pool) and, for comparison, by post-training quantisation (PTQ, with and without
the float layers), exports every format, and checks each file on the 1,697 holdout images: size, 1-thread latency
at batch 1, max probability difference from PyTorch, pAUC, AUC. Then `Predictor` runs the recommended ExecuTorch
file over the holdout image files (plus a broken file) and compares its triage decisions with PyTorch's.

Usage: python benchmarks/phone_export.py --run runs/phone --student student_p0.5"""
import argparse, json, time, tempfile
from pathlib import Path
import numpy as np, pandas as pd, torch
from lesion_fastai.data import read_lesions, LesionData
from lesion_fastai.splits import add_folds
from lesion_fastai.cache import ImageCache, float_batches
from lesion_fastai.datablock import lesion_dataloaders
from lesion_fastai.models import load_bundle, student_learner
from lesion_fastai.export import export_student, export_pte, check_file, export_table
from lesion_fastai.runtimes import available_formats, load_runtime
from lesion_fastai.quantize import qat_finetune, save_int8, load_int8, quantize_ptq, FLOAT_LAYERS
from lesion_fastai.metrics import partial_auc
from lesion_fastai.predict import Predictor
from fastai.torch_core import set_seed

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--run', default='runs/phone'); ap.add_argument('--student', default='student_p0.5')
    ap.add_argument('--data', default='../shared/data/ham10000')
    ap.add_argument('--qat-images', type=int, default=2000, help='pool images for the QAT epoch')
    ap.add_argument('--qat-epochs', type=int, default=1); ap.add_argument('--qat-lr', type=float, default=1e-4)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    run = Path(a.run); out = run/f'export_{a.student}'; out.mkdir(parents=True, exist_ok=True)
    bundle = run/'models'/a.student
    model, cfg = load_bundle(bundle); size = cfg['size']
    data = add_folds(read_lesions(a.data, spec='ham10000'), 5, a.seed)
    df = data.df; hold = (df.fold == 0).to_numpy()
    cache = ImageCache.build(df.image_ref, size, run/'cache', ids=data.ids)
    val, y, groups = np.asarray(cache.array[np.flatnonzero(hold)]), df.malignant.values[hold], df.lesion_id.values[hold]
    rng = np.random.default_rng(a.seed)
    calib = np.asarray(cache.array[np.sort(rng.choice(np.flatnonzero(~hold), 256, replace=False))])
    def log(m): print(f"[export] {time.strftime('%H:%M:%S')} {m}", flush=True)

    q_f = run/'models'/f'{a.student}_int8.pt2'
    if not q_f.exists():
        log(f"QAT: {a.qat_epochs} epoch(s) on {a.qat_images} pool images")
        t0 = time.time()
        d = LesionData(df.copy(), data.spec, data.source)
        d.df['soft'] = np.nan; d.df.loc[~hold, 'soft'] = np.load(run/'teacher_soft.npy')
        keep = hold.copy(); keep[np.sort(rng.choice(np.flatnonzero(~hold), a.qat_images, replace=False))] = True
        sub = d.subset(keep)
        dls = lesion_dataloaders(sub, (sub.df.fold == 0).to_numpy(), size=size, bs=64, cache=cache, meta=False, soft_col='soft')
        set_seed(a.seed)
        learn = student_learner(dls, cfg['arch'], pretrained=False, alpha=cfg['alpha'], T=cfg['T'], degrade=(cfg.get('degrade') or {}).get('p', 0))
        learn.model.load_state_dict(model.state_dict())
        save_int8(qat_finetune(learn, a.qat_epochs, a.qat_lr), q_f, size)
        (out/'qat_seconds.txt').write_text(f"{time.time() - t0:.0f}")
    fmts = available_formats(on_request=True)
    log(f"exporting {fmts}")
    rep = export_student(bundle, out, calib, val, y, groups, formats=fmts, int8_model=load_int8(q_f), n_boot=200)
    ref = rep['exports']['pytorch']
    rows = export_table(rep)
    log("PTQ comparisons")
    ref_p = np.concatenate([load_runtime(bundle)(b) for b in float_batches(val)])
    for name, skip in (('pte_int8 PTQ, float layers', FLOAT_LAYERS), ('pte_int8 PTQ, all int8', ())):
        f = export_pte(quantize_ptq(model, calib, skip=skip), out/f"ptq_{'float' if skip else 'all'}.pte", size)
        r = check_file(f, val, y, ref=ref_p)[0]
        rows.loc[name] = pd.Series(dict(r, precision='int8', passes=r['pauc'] >= ref['pauc'] - 0.002))
    rows.to_csv(out/'exports.csv')
    log("lesion-predict path: Predictor over the holdout files with the ExecuTorch file")
    files = list(df.image_ref[hold]); broken = Path(tempfile.mkdtemp())/'broken.jpg'; broken.write_bytes(b'\xff\xd8 not a jpeg')
    th = json.loads((out/'student.json').read_text())['triage']['threshold']
    t0 = time.time(); pe = Predictor(out, backend='executorch', tta=False).predict(files + [str(broken)], progress=False); t_pe = time.time() - t0
    pt = Predictor(bundle, threshold=th).predict(files, progress=False)
    agree = float((pe.decision.values[:-1] == pt.decision.values).mean())
    L = [f"Phone files of `{bundle}` ({size} px), checked on the HAM10000 holdout fold 0 ({len(y)} images, {int(y.sum())} malignant); "
         f"latency per image at batch 1 on one CPU thread of this machine; max diff = largest probability difference from PyTorch. "
         f"int8 from QAT: {a.qat_epochs} epoch on {a.qat_images} pool images, lr {a.qat_lr} "
         f"({(out/'qat_seconds.txt').read_text() if (out/'qat_seconds.txt').exists() else '?'} s); PTQ: 256 pool images.", "",
         "| format | file | MB | ms/image | max diff | pAUC | AUC | passes |", "|---|---|---|---|---|---|---|---|"]
    for k, r in rows.iterrows():
        if isinstance(r.get('error'), str): L.append(f"| {k} | failed: {r['error'][:60]} | | | | | | no |"); continue
        L.append(f"| {k} | {r['file']} | {r['size_mb']:.2f} | {r['latency_ms_1thread']:.2f} | {r['max_abs_diff']:.3g} | {r['pauc']:.4f} | {r['auc']:.3f} | {'yes' if r['passes'] else 'no'} |")
    L += ["", f"Recommended: {rep['recommended']}. Predictor with backend executorch ({Predictor(out, backend='executorch').model_file.name}) "
          f"over {len(files)} holdout files + 1 broken file in {t_pe:.0f} s: triage decisions equal to PyTorch's on {agree:.2%}; "
          f"the broken file's row: error '{pe.error.iloc[-1]}'.", "",
          f"Command: python benchmarks/phone_export.py --run {a.run} --student {a.student} --qat-images {a.qat_images}"]
    (out/'phone_export.md').write_text('\n'.join(L) + '\n'); print('\n'.join(L))

if __name__ == '__main__': main()
