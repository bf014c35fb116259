"""Benchmark: the routed pair of benchmarks/phone_routed.py exported for the phone, against the photo student alone. Not a test.

Fold 0's pair of seed 0 (`in_distill_clean_e20_lr8_s0_f0` + `ham_noakiec`, kept in runs/phone_photos), the router
fitted on the other folds' photos and 1,000 HAM10000 pool images; `export_student` writes every installed format and
checks each file on fold 0's 99 photos and 300 HAM10000 holdout images (threshold from the photos); then the photo
student alone, the same way. Prints the export tables (size, latency at batch 1 on one thread, pAUC, AUC, passes).

Usage: python benchmarks/phone_routed_export.py     # about 10 minutes on this machine's CPU
"""
import sys, json, tempfile, numpy as np, torch
sys.path.insert(0, 'benchmarks')
from pathlib import Path
torch.set_num_threads(1)
from common import ham10000, pad_ufes20
from lesion_fastai.cache import ImageCache
from lesion_fastai.models import ImageModel, save_bundle
from lesion_fastai.backbones import create_backbone
from lesion_fastai.phone import route_students
from lesion_fastai.export import export_student, export_table
pad, ham = pad_ufes20(), ham10000()
img = lambda d: np.asarray(ImageCache.build(d.df.image_ref, 128, Path('.cache'), ids=d.ids, progress=False).array)
X, Xh = img(pad), img(ham); fold = pad.df.fold.to_numpy(); y = pad.df.malignant.to_numpy()
hold = (ham.df.fold == 0).to_numpy(); pool = np.flatnonzero(~hold & (ham.df.dx != 'akiec').to_numpy())
rng = np.random.default_rng(0); hv = np.flatnonzero(hold)[rng.choice(hold.sum(), 300, replace=False)]
d = Path(tempfile.mkdtemp())
def bundle(sd, name):
    m = ImageModel(create_backbone('tf_efficientnet_lite0', pretrained=False)); m.load_state_dict(sd)
    m.lesion_cfg = dict(kind='student', arch='tf_efficientnet_lite0', size=128, alpha=0., T=2., mean=m.backbone.norm.mean.flatten().tolist(), std=m.backbone.norm.std.flatten().tolist(), degrade=None)
    return save_bundle(m, d/name)
bd = bundle(torch.load('runs/phone_photos/ham_noakiec_128px_e3.pth', weights_only=True), 'derm')
bp = bundle(torch.load('runs/phone_photos/in_distill_clean_e20_lr8_s0_f0.pth', weights_only=True), 'phone')
te = fold == 0
r = route_students({'dermoscopy': bd, 'phone': bp}, {'dermoscopy': Xh[rng.choice(pool, 1000, replace=False)], 'phone': X[~te]},
                   val={'dermoscopy': (Xh[hv], ham.df.malignant.to_numpy()[hv]), 'phone': (X[te], y[te])})
calib = np.concatenate([Xh[rng.choice(pool, 128, replace=False)], X[~te][:128]])
vi = np.concatenate([Xh[hv], X[te]]); vy = np.concatenate([ham.df.malignant.to_numpy()[hv], y[te]]); vs = ['dermoscopy'] * len(hv) + ['phone'] * te.sum()
rep = export_student(r, d/'routed', calib_images=calib, val_images=vi, val_y=vy, val_sources=vs, op_source='phone', n_boot=200)
print(export_table(rep).to_string()); print(json.dumps(rep['per_source'])); print('recommended', rep['recommended'])
rep1 = export_student(bp, d/'single', calib_images=calib, val_images=vi, val_y=vy, val_sources=vs, op_source='phone', n_boot=200, formats=['pte', 'pte_int8', 'onnx', 'onnx_int8'])
print(export_table(rep1).to_string())
