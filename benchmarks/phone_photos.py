"""Benchmark: students for real smartphone photos (PAD-UFES-20), chosen by patient-grouped cross-validation. Not a test.

Data: the shared PAD-UFES-20 part (497 smartphone photos of 404 patients, 208 malignant = BCC, SCC, MEL) in 5
patient-grouped folds (seed 0); HAM10000 (dermoscopy, lesion-grouped folds, holdout fold 0 never trained on) for
pre-training and to check what the phone-photo students keep on dermoscopy. Every model: tf_efficientnet_lite0,
128 px (--size), `fine_tune(--epochs, 4e-3)`, positives weighted 3x, students with phone degradations (p 0.5), as the
README's notebook recipe; the teachers see the photo and PAD-UFES-20's clinical data (age, site, itch, grew, hurt,
changed, bleed, elevation; the columns recorded for biopsied lesions only are leaks, see `lesion_fastai.data`).

Stage 1, HAM10000 pre-training (once): the image-only student of the notebook recipe on the HAM10000 pool, akiec out
of training (`ham_noakiec`, --pretrain exclude) and/or with HAM10000's own labels (`ham_akiec1`, --pretrain
malignant); scored on the HAM10000 holdout and on all 497 phone photos (zero-shot).

Stage 2, for each seed and PAD-UFES-20 fold (trained on the other four folds, scored on it), the models of --models:
- `peer`: fastai's `vision_learner` fine-tune of the same backbone from ImageNet (what a fastai user would do);
- students (`STUDENTS`: start, teacher, degradations, data): `in_plain` / `in_distill` from ImageNet (plain / distilled
  online from `teacher_in`, alpha 0.5, T 2), `in_clean` (no degradations), `ham_plain` / `ham_distill` from `ham_noakiec`,
  `joint_*` with --replay HAM10000 pool images beside the phone photos (drawn --pad-weight times per epoch),
  `in_soft_gbdt` / `in_soft_teacher` distilled offline from soft targets out of fold within the training folds (the
  metadata GBDT; or FiLM teachers each trained on three folds, never on the scored fold nor on the row's own: what
  `lesion-run`'s out-of-fold teachers do, without a leak into the scored fold);
- teachers (`TEACHERS`): trained when a student needs one, or on their own.
Screening options (name the run with --tag, merged beside the default run's columns and compared with them): --arch
(another backbone, e.g. tf_efficientnet_lite2 with --tag _l2), --size (tag p<side>), --epochs (tag e<epochs>), --lr (tag
lr<thousandths>, e.g. _e20_lr8 for 8e-3), --aug (heavier scale and colour augmentation, tag aug), --ema, --mixup, --drop-path.
Out-of-fold logits per model and seed go to --work/oof.csv (a killed run resumes at the next missing model); the
students of --keep-seed are kept (one per fold) for the ink-mark test, test-time augmentation and the HAM10000 holdout. --summary (also
run at the end) prints and writes summary.md: pooled out-of-fold pAUC and AUC per seed, grouped bootstrap intervals
over patients (mean over seeds), paired differences, subgroups (skin type, without actinic keratoses, ink marks),
the marks painted out, the kept students with test-time augmentation and on the HAM10000 holdout (their logits
cached beside each kept student, so a re-summary scores only the new ones).

Usage: python benchmarks/phone_photos.py --pretrain --seeds 0 1 2 --models in_distill_clean peer in_clean
       python benchmarks/phone_photos.py --work runs/pp_s0 --pretrain --seeds 0 --threads 1 --keep-seed 0   # one process a seed, then:
       python benchmarks/phone_photos.py --merge runs/pp_s0 runs/pp_s1 runs/pp_s2 --work runs/phone_photos
       python benchmarks/phone_photos.py --work runs/ema --pretrain --seeds 0 --threads 1 --models in_clean --tag _ema --ema 0.99   # a screen
       python benchmarks/phone_photos.py --work runs/lr8 --pretrain --seeds 0 --threads 1 --models in_clean --tag _e20_lr8 --lr 8e-3 --epochs 20
       python benchmarks/phone_photos.py --summary"""
import argparse, functools, json, re, shutil, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from fastai.vision.all import vision_learner, Normalize
from fastai.callback.core import Callback
from fastai.torch_core import set_seed
from lesion_fastai.data import read_lesions, LesionData
from lesion_fastai.sources import combine_sources
from lesion_fastai.splits import add_folds
from lesion_fastai.cache import ImageCache
from lesion_fastai.datablock import lesion_dataloaders, lesion_test_dl, lesion_loss
from lesion_fastai.backbones import lite_state_dict, create_backbone, LITE_WEIGHTS
from lesion_fastai.models import teacher_learner, student_learner, ImageModel
from lesion_fastai.train import predict_logits
from lesion_fastai.callbacks import FastTrainCallback
from lesion_fastai.phone import ink_share, paint_out
from lesion_fastai.metrics import partial_auc, roc_auc, bootstrap_ci, paired_diff_ci, fmt_ci, RocAUC, PartialAUC
from common import ham10000, pad_ufes20, seeds_mean

ARCH = 'tf_efficientnet_lite0'    # --arch sets it (with --tag, e.g. _l2: the columns and kept models of another backbone)
def log(msg): print(f"[phone_photos] {time.strftime('%H:%M:%S')} {msg}", flush=True)


def ham_pretrain(a, work, ambiguous, pad):
    """The notebook recipe's image-only student on the HAM10000 pool (no teacher), validated on the holdout (scored
    once, nothing chosen on it); its state dict, holdout scores and zero-shot phone-photo logits, cached in work"""
    name = 'ham_akiec1' if ambiguous == 'malignant' else 'ham_noakiec'
    f = work/f"{name}_{a.size}px_e{a.ham_epochs}.pth"
    if f.exists(): return torch.load(f, weights_only=True)
    ham = ham10000(a.ham)    # the folds of HAM10000's own table
    hold = (ham.df.fold == 0).to_numpy()
    train = ~hold & ((ham.df.dx != 'akiec').to_numpy() if ambiguous == 'exclude' else True)
    data = ham.subset(hold | train)
    log(f"{name}: HAM10000 pre-training on {int(train.sum())} images")
    set_seed(0); t0 = time.time()
    dls = lesion_dataloaders(data, (data.df.fold == 0).to_numpy(), size=a.size, bs=a.bs, cache=a.cache, meta=False)
    dls.train.rng.seed(0)
    s = student_learner(dls, ARCH, teacher=None, alpha=0.)
    s.fine_tune(a.ham_epochs, a.lr)
    z = predict_logits(s).ravel(); yh = data.df.malignant[data.df.fold == 0]
    zp = predict_logits(s, lesion_test_dl(dls, pad.df)).ravel()
    H = json.loads((work/'ham.json').read_text()) if (work/'ham.json').exists() else {}
    H[name] = dict(pauc=partial_auc(yh, z), auc=roc_auc(yh, z), train_s=time.time() - t0, zero_shot_auc=roc_auc(pad.df.malignant, zp))
    (work/'ham.json').write_text(json.dumps(H, indent=1)); np.save(work/f'{name}_pad.npy', zp)
    log(f"{name}: HAM10000 holdout pAUC {H[name]['pauc']:.4f} AUC {H[name]['auc']:.3f}; phone photos zero-shot AUC {H[name]['zero_shot_auc']:.3f}")
    sd = {k: v.detach().cpu() for k, v in s.model.state_dict().items()}
    torch.save(sd, f); return sd

def peer(pad, fold, a, seed):
    "What a fastai user would do: vision_learner + fine_tune, same backbone, ImageNet weights, same budget"
    set_seed(seed)
    dls = lesion_dataloaders(pad, fold, size=a.size, bs=a.pad_bs, cache=a.cache, meta=False); dls.train.rng.seed(seed)
    dls.add_tfms([Normalize.from_stats([.5] * 3, [.5] * 3)], 'after_batch')   # Lite0's statistics
    learn = vision_learner(dls, ARCH, pretrained=False, n_out=1, loss_func=lesion_loss(), metrics=[RocAUC(), PartialAUC()],
                           cbs=FastTrainCallback())    # channels-last weights, as the students have: speed only (half the time on this CPU)
    learn.model[0].model.load_state_dict({k: v for k, v in lite_state_dict(ARCH).items() if not k.startswith('classifier.')})
    learn.fine_tune(a.epochs, a.lr)
    return predict_logits(learn).ravel()

# the phone-photo models: (start from, teacher to distil from or None, degradation probability, training data: the
# phone photos alone, or 'joint' with --replay HAM10000 pool images, akiec out, the phone photos drawn --pad-weight times)
STUDENTS = dict(ham_plain=('ham', None, 0.5, 'pad'), ham_distill=('ham', 'teacher_ham', 0.5, 'pad'), in_plain=('imagenet', None, 0.5, 'pad'),
                in_distill=('imagenet', 'teacher_in', 0.5, 'pad'), in_distill_th=('imagenet', 'teacher_ham', 0.5, 'pad'),
                in_clean=('imagenet', None, 0., 'pad'), in_distill_clean=('imagenet', 'teacher_in', 0., 'pad'), joint_plain=('imagenet', None, 0.5, 'joint'), joint_distill=('imagenet', 'teacher_joint', 0.5, 'joint'),
                joint_clean=('imagenet', None, 0., 'joint'), joint_full_clean=('imagenet', None, 0., 'joint_full'),
                joint_full_distill=('imagenet', 'teacher_joint_full', 0., 'joint_full'),
                in_soft_gbdt=('imagenet', 'soft:gbdt', 0., 'pad'), in_soft_teacher=('imagenet', 'soft:teacher', 0., 'pad'))    # 'soft:gbdt': cached soft targets, the metadata GBDT out of fold within the training folds
TEACHERS = dict(teacher_ham=('ham', 'pad'), teacher_in=('imagenet', 'pad'), teacher_joint=('imagenet', 'joint'), teacher_joint_full=('imagenet', 'joint_full'))

def starts(m) -> set:
    "Where model `m` and the teacher it distils from start ('ham', 'imagenet'); the peer starts from ImageNet"
    if m in TEACHERS: return {TEACHERS[m][0]}
    if m not in STUDENTS: return {'imagenet'}
    start, teacher = STUDENTS[m][:2]
    return {start} | (starts(teacher) if teacher else set())

def joint_table(pad, a, full=False):
    "The phone photos and --replay HAM10000 pool images (akiec out; `full`: the whole pool) in one table; the HAM10000 rows train in every fold (fold -1)"
    ham = ham10000(a.ham, ambiguous='exclude')
    pool = ham.df[ham.df.fold != 0]
    if not full: pool = pool.sample(a.replay, random_state=0)
    both = combine_sources([ham.subset(ham.df.index.isin(pool.index)), pad], ['ham10000', 'pad_ufes20'])
    both.df['fold'] = np.r_[np.full(len(pool), -1), pad.df.fold.to_numpy()]
    return both

class EMACallback(Callback):
    "Exponential moving average of the weights (`decay` per step, warmed up): validated with the average, the model ends with it"
    order = 70
    def __init__(self, decay=0.99): self.decay = decay
    def before_fit(self):
        self.n = 0; self.ema = {k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}
    def after_step(self):
        self.n += 1; d = min(self.decay, (1 + self.n) / (10 + self.n))
        with torch.no_grad():
            for k, v in self.learn.model.state_dict().items():
                if v.is_floating_point(): self.ema[k].lerp_(v.detach(), 1 - d)
                else: self.ema[k].copy_(v)
    def _swap(self):
        cur = {k: v.detach().clone() for k, v in self.learn.model.state_dict().items()}
        self.learn.model.load_state_dict(self.ema); self.ema = cur
    def before_validate(self): self._swap()
    def after_validate(self): self._swap()
    def after_fit(self): self.learn.model.load_state_dict(self.ema)

class MixCallback(Callback):
    "Mixup: each training batch mixed with a shuffled copy of itself (images and targets; lam ~ Beta(alpha, alpha), the larger share kept); fastai's `MixUp` raised in `before_batch` on these batches"
    order = 2                      # after the distillation callback has left the student its image
    def __init__(self, alpha=0.4): self.beta = torch.distributions.Beta(alpha, alpha)
    def before_batch(self):
        if not self.training: return
        x, y = self.xb[0], self.yb[0]
        lam = self.beta.sample((x.shape[0],)).to(x.device); lam = torch.maximum(lam, 1 - lam)
        i = torch.randperm(x.shape[0], device=x.device)
        self.learn.xb = (x * lam.view(-1, 1, 1, 1) + x[i] * (1 - lam.view(-1, 1, 1, 1)),) + tuple(self.xb[1:])
        self.learn.yb = (y * lam.view(-1, *[1] * (y.dim() - 1)) + y[i] * (1 - lam.view(-1, *[1] * (y.dim() - 1))),) + tuple(self.yb[1:])

def extra(a, teacher):
    "The screening callbacks of a student: EMA of weights, mixup (plain students only)"
    return ([EMACallback(a.ema)] if a.ema else []) + ([MixCallback(a.mixup)] if a.mixup and not teacher else [])

def heavy_aug():
    "Screening (--aug): heavier scale and colour augmentation than `lesion_aug()`'s: zoom up to 1.5, perspective warp 0.2, saturation 0.3, hue 0.03"
    from fastai.vision.augment import Saturation, Hue
    from lesion_fastai.datablock import lesion_aug
    return lesion_aug(max_zoom=1.5, max_warp=0.2) + [Saturation(0.3), Hue(0.03)]

def drop_path(model, rate):
    "Stochastic depth in the student's residual blocks, rising linearly to `rate` in the last block"
    from timm.layers import DropPath
    blocks = [b for st in model.backbone.body.blocks for b in st]
    for i, b in enumerate(blocks):
        if hasattr(b, 'drop_path') and getattr(b, 'has_skip', False): b.drop_path = DropPath(rate * i / len(blocks))
    return model

def pair_teacher(data, f, g, a, seed):
    "Logits on every row of a FiLM teacher (photo + clinical data) trained on the folds other than `f` and `g`: cached in --work"
    cache = a.work_path/f'pair_teacher_{min(f, g)}{max(f, g)}{a.tag}_s{seed}.npy'
    if cache.exists(): return np.load(cache)
    keep = ~data.df.fold.isin([f, g]).to_numpy() | (data.df.fold == f).to_numpy()
    sub = data.subset(keep)                       # trained on the other three folds, validated on f (nothing is chosen on it)
    set_seed(seed)
    d = lesion_dataloaders(sub, f, size=a.size, bs=a.pad_bs, cache=a.cache, meta=True); d.train.rng.seed(seed)
    t = teacher_learner(d, ARCH, fusion='film'); t.fine_tune(a.epochs, a.lr)
    z = predict_logits(t, lesion_test_dl(d, data.df)).ravel()
    np.save(cache, z); return z

def soft_table(data, fold, how, seed, a):
    """`data` with a `soft` column for the training folds, NaN on `fold`: out-of-fold logits of the metadata GBDT within the
    training folds ('gbdt'), or of image + metadata teachers each trained on three folds, never on the row's fold nor on `fold` ('teacher')"""
    from lesion_fastai.metamodel import oof_predict, MetaGBDT
    from lesion_fastai.metrics import logit
    train = sorted(set(data.df.fold) - {fold})
    if how == 'gbdt':
        oof, _ = oof_predict(data, folds=train, make_model=lambda: MetaGBDT(data.spec, seed=seed), progress=False)
        z = np.where(oof.notna(), logit(oof.fillna(0.5)), np.nan)
    elif how == 'teacher':
        z = np.full(len(data.df), np.nan)
        for g in train:
            rows = (data.df.fold == g).to_numpy(); z[rows] = pair_teacher(data, fold, g, a, seed)[rows]
    else: raise ValueError(f"soft targets {how!r}: 'gbdt' or 'teacher'")
    return LesionData(data.df.assign(soft=z), data.spec, data.source)

def pad_models(pad, fold, a, seed, ham_sd, todo):
    "The fold's teachers and students (those in `todo`), each trained on the other folds: {name: logits on the fold's photos}"
    tables = dict(pad=pad)
    data_of = lambda m: (STUDENTS.get(m) or ('', '', 0, TEACHERS.get(m, ('', ''))[1]))[3]
    need_data = {data_of(m) for m in todo} | {data_of(STUDENTS[m][1]) for m in todo if m in STUDENTS and STUDENTS[m][1]}
    if 'joint' in need_data: tables['joint'] = joint_table(pad, a)
    if 'joint_full' in need_data: tables['joint_full'] = joint_table(pad, a, full=True)
    def dls(data):
        set_seed(seed)
        w = dict(joint={'pad_ufes20': a.pad_weight}, joint_full={'pad_ufes20': a.pad_weight, 'ham10000': a.replay_weight}).get(data)
        soft = dict(meta=False, soft_col='soft') if data == 'soft' else dict(meta=True)
        d = lesion_dataloaders(tables[data], fold, size=a.size, bs=a.pad_bs, cache=a.cache, source_weights=w, batch_tfms=heavy_aug() if a.aug else None, **soft)
        d.train.rng.seed(seed); return d
    init = lambda start: dict(init=ham_sd) if start == 'ham' else {}
    out, teachers = {}, {}
    need = {STUDENTS[m][1] for m in todo if m in STUDENTS and STUDENTS[m][1] and not STUDENTS[m][1].startswith('soft:')} | {m for m in todo if m in TEACHERS}
    for name in sorted(need):
        start, data = TEACHERS[name]
        set_seed(seed); t = teacher_learner(dls(data), ARCH, fusion='film', **init(start))
        t.fine_tune(a.teacher_epochs or a.epochs, a.lr); out[name] = predict_logits(t).ravel(); teachers[name] = t
    for name in [m for m in todo if m in STUDENTS]:
        start, teacher, p, data = STUDENTS[name]
        set_seed(seed)
        if teacher and teacher.startswith('soft:'):     # offline distillation from out-of-fold soft targets, nested in the training folds
            tables['soft'] = soft_table(tables[data], fold, teacher[5:], seed, a); data = 'soft'
        s = student_learner(dls(data), ARCH, teacher=teachers.get(teacher), alpha=a.alpha if teacher else 0., T=a.T, degrade=p, cbs=extra(a, teacher), **init(start))
        if a.drop_path: drop_path(s.model, a.drop_path)
        s.fine_tune(a.epochs, a.lr); out[name] = predict_logits(s).ravel()
        if seed == a.keep_seed: torch.save({k: v.detach().cpu() for k, v in s.model.state_dict().items()}, a.work_path/f'{name}{a.tag}_s{seed}_f{fold}.pth')
    return out

def cached_images(refs, ids, size, a) -> np.ndarray:
    "The uint8 (N, size, size, 3) images of `refs` from the decoded-image cache in --cache (built on first use, then only mapped)"
    return np.asarray(ImageCache.build(refs, size, a.cache, ids=ids, progress=False).array)

def pad_images(pad, a, size=None) -> np.ndarray: return cached_images(pad.df.image_ref, pad.ids, size or a.size, a)

def tag_tokens(s) -> list:
    "The '_'-separated tokens of a column, model or tag name, a fused side and budget split ('p192e20' -> 'p192', 'e20')"
    return re.sub(r'(p\d+)(e\d+)', r'\1_\2', s).split('_')

TAG_WORDS = dict(p='{} px', e='{} epochs', lr='lr {}e-3')     # the tag tokens that carry a number: image side, unfrozen epochs, learning rate in thousandths

def tag_value(name, key):
    "The number of `name`'s tag token `key` (a key of TAG_WORDS) as text, e.g. tag_value('in_clean_e20_lr8_s0', 'lr') -> '8'; None without one"
    return next((m[2] for t in tag_tokens(name) if (m := re.fullmatch(r'(p|e|lr)(\d+(?:\.\d+)?)', t)) and m[1] == key), None)

def run_size(name, default) -> int:
    "The image side a run was trained at: its tag's `p<side>` token (e.g. in_clean_p192e20_s1 -> 192), else `default` (--size)"
    v = tag_value(name, 'p'); return int(v) if v else default

def base_of(name, keys):
    "The longest of `keys` that `name` is, or starts with followed by '_' (a recipe and its run's tag); None if none"
    return max((b for b in keys if name == b or name.startswith(b + '_')), key=len, default=None)

def _shapes(sd): return {k: tuple(v.shape) for k, v in sd.items()}

@functools.cache
def lite_shapes(arch):
    "The parameter shapes of a student on EfficientNet-Lite `arch` (built once per architecture)"
    return _shapes(ImageModel(create_backbone(arch, pretrained=False)).state_dict())

def saved_student(sd) -> ImageModel:
    "A student saved here (its state dict) as an eval-mode `ImageModel`, on the EfficientNet-Lite its shapes match"
    arch = next((k for k in LITE_WEIGHTS if lite_shapes(k) == _shapes(sd)), ARCH)
    m = ImageModel(create_backbone(arch, pretrained=False)); m.load_state_dict(sd); return m.eval()

def student_logits(m, x, bs=64, tta=False) -> np.ndarray:
    "Logits of student `m` (float (N, 3, H, W) batch -> logits) on uint8 (N, H, W, 3) images; `tta`: the mean over the 8 flips and rotations"
    from lesion_fastai.cache import float_batches
    from lesion_fastai.predict import tta_logits
    fn = lambda b: m(torch.from_numpy(b)).numpy().ravel()
    with torch.no_grad(): return np.concatenate([tta_logits(fn, b) if tta else fn(b) for b in float_batches(x, bs)])

def model_logits(sd, x, bs=64, tta=False) -> np.ndarray:
    "Logits of a saved student state dict on uint8 (N, H, W, 3) images; `tta`: the mean over the 8 flips and rotations"
    return student_logits(saved_student(sd), x, bs, tta)

def kept_logits(f, x, what, tta=False) -> np.ndarray:
    """Logits of the kept student in file `f` on images `x`, cached beside it as <stem>.<what>.npz with the file's
    modification time (recomputed when `f` was replaced, a merge's copy keeps it, or the images are another number):
    a merged summary rescores only the students it has not seen"""
    c, stamp = f.with_name(f'{f.stem}.{what}.npz'), f.stat().st_mtime_ns
    if c.exists():
        with np.load(c) as k:
            if int(k['stamp']) == stamp and len(k['z']) == len(x): return k['z']
    z = model_logits(torch.load(f, weights_only=True), x, tta=tta); np.savez(c, z=z, stamp=stamp); return z

def shipped_base(name) -> tuple:
    "The student recipe of a --shipped name and its tag: ('in_distill_clean', '_e20') for in_distill_clean_e20"
    base = base_of(name, STUDENTS)
    if base is None: raise ValueError(f"--shipped {name!r}: a student of STUDENTS ({', '.join(STUDENTS)}), optionally with its run's tag")
    return base, name[len(base):]

def summary(work, pad, a):
    T = pd.read_csv(work/'oof.csv'); y, g = T.target.to_numpy(), T.patient_id.to_numpy()
    models = {}
    for c in T.columns:
        if '_s' in c and c.rsplit('_s', 1)[1].isdigit() and T[c].notna().all(): models.setdefault(c.rsplit('_s', 1)[0], []).append(c)   # complete columns only
    names = dict(peer='fastai vision_learner fine-tune on the phone photos (peer)', ham_akiec1="HAM10000-only student, akiec malignant (today's labels; zero-shot)",
                 ham_noakiec='HAM10000-only student, akiec out (zero-shot)', in_plain='student from ImageNet on the phone photos, plain',
                 in_distill='student from ImageNet on the phone photos, distilled from teacher_in', in_distill_th='student from ImageNet, distilled from teacher_ham',
                 in_clean='student from ImageNet on the phone photos, plain, no degradations',
                 in_distill_clean='student from ImageNet on the phone photos, distilled from teacher_in, no degradations', ham_plain='student HAM10000 -> phone photos, plain',
                 ham_distill='student HAM10000 -> phone photos, distilled from teacher_ham', teacher_in='teacher from ImageNet: photo + clinical data (FiLM)',
                 teacher_ham='teacher from HAM10000: photo + clinical data (FiLM)', gbdt='metadata GBDT: clinical data alone (no image)',
                 joint_plain='student from ImageNet on the phone photos + HAM10000 replay, plain',
                 joint_distill='student from ImageNet on the phone photos + HAM10000 replay, distilled from teacher_joint',
                 teacher_joint='teacher from ImageNet on the phone photos + HAM10000 replay (FiLM)',
                 peer_e3='the peer, 3 epochs (the former budget)', in_clean_e3='student, plain, no degradations, 3 epochs (the former recipe)',
                 in_distill_clean_e3='student, distilled, no degradations, 3 epochs (the former recipe)', teacher_in_e3='teacher, 3 epochs (the former recipe)',
                 in_plain_e3='student, plain, with simulated degradations (the dermoscopy recipe), 3 epochs',
                 in_distill_e3='student, distilled, with simulated degradations (the dermoscopy recipe), 3 epochs',
                 ham_plain_e3='student HAM10000 -> phone photos, plain, 3 epochs',
                 joint_clean='student from ImageNet on the phone photos + HAM10000 replay, plain, no degradations',
                 joint_clean_w4='student from ImageNet on the phone photos (drawn 4 times) + 2,000 HAM10000 images (a fixed sample), plain, no degradations',
                 joint_full_clean='student from ImageNet on the phone photos (drawn 4 times) + 0.3 of the HAM10000 pool drawn each epoch, plain, no degradations',
                 joint_full_distill='student from ImageNet on the phone photos (drawn 4 times) + 0.3 of the HAM10000 pool drawn each epoch, distilled from teacher_joint_full, no degradations',
                 teacher_joint_full='teacher from ImageNet on the phone photos + the HAM10000 pool (FiLM)',
                 joint_clean_w4_e6='joint student: the phone photos drawn 4 times + a fixed 2,000 HAM10000 images each epoch, plain, no degradations, 6 epochs',
                 joint_full_clean_e6='joint student: the phone photos drawn 4 times + 0.3 of the HAM10000 pool drawn afresh each epoch, plain, no degradations, 6 epochs',
                 joint_full_distill_e6='the same joint student, distilled from a joint teacher, 6 epochs',
                 in_soft_gbdt='student from ImageNet on the phone photos, distilled offline from the metadata GBDT (out of fold within the training folds)',
                 in_soft_teacher='student from ImageNet on the phone photos, distilled offline from out-of-fold teachers (photo + clinical data, each trained on three folds)')
    budget = {m: (b, e) for m in models for b, _, e in [m.rpartition('_e')] if e.isdigit()}   # runs of other budgets (--tag _e<epochs>)
    for m, (base, e) in budget.items():
        if m not in names and base in names: names[m] = f"{names[base].split(' (')[0]}, {e} epochs"
    words = dict(l1='EfficientNet-Lite1', l2='EfficientNet-Lite2', ema='EMA of weights', mix='mixup', dp='stochastic depth', aug='heavier scale and colour augmentation')     # other tags: another backbone (--arch), possibly with a budget
    for m in models:
        base = base_of(m, names)
        if m in names or base is None: continue
        tags = tag_tokens(m[len(base) + 1:])     # p192e20: 192 px, 20 epochs
        ep = [t for t in tags if tag_value(t, 'e')]
        names[m] = f"{names[base].split(' (')[0]}, " + ', '.join(next((TAG_WORDS[k].format(v) for k in TAG_WORDS if (v := tag_value(t, k))), words.get(t, t)) for t in tags)
        budget[m] = (f'{base}_{ep[0]}' if ep and f'{base}_{ep[0]}' in models and len(tags) > 1 else base, '')   # compared with the same budget's run where there is one
    sp = a.shipped; base, tag = shipped_base(sp)     # in_distill_clean_e20: in_distill_clean at another budget; its plain twin and teacher at the same
    plain = {'in_distill_clean': 'in_clean'}.get(base, base.replace('distill', 'plain').replace('_th', '')) + tag; tch = (STUDENTS[base][1] or base) + tag
    if sp in names: names[sp] += ' **(shipped)**'
    L = [f"PAD-UFES-20 shared part: {len(T)} photos of {T.patient_id.nunique()} patients ({int(y.sum())} malignant), 5 patient-grouped folds, "
         f"out-of-fold scores pooled; intervals: 95% grouped bootstrap over patients, mean over seeds", "",
         "| model | seeds | pAUC per seed | pAUC [95% CI] | AUC per seed | AUC [95% CI] |", "|---|---|---|---|---|---|"]
    res = {}
    for m in names:
        if m not in models: continue
        cols = models[m]; Z = T[cols].to_numpy()
        ci_p = bootstrap_ci(seeds_mean(partial_auc), y, Z, g); ci_a = bootstrap_ci(seeds_mean(roc_auc), y, Z, g)
        res[m] = dict(pauc=[partial_auc(y, T[c]) for c in cols], auc=[roc_auc(y, T[c]) for c in cols], pauc_ci=ci_p, auc_ci=ci_a)
        L.append(f"| {names[m]} | {len(cols)} | {', '.join(f'{v:.4f}' for v in res[m]['pauc'])} | {fmt_ci(ci_p, 4)} | "
                 f"{', '.join(f'{v:.3f}' for v in res[m]['auc'])} | {fmt_ci(ci_a)} |")
    L += ["", "Paired differences (same photos, seeds matched; grouped bootstrap over patients):", ""]
    seed_of = lambda c: c.rsplit('_s', 1)[1]
    seen = set()
    for x, ref in [(sp, 'peer'), (plain, 'peer'), (sp, plain), ('ham_plain', 'in_plain'), ('in_clean', 'in_plain'), ('in_distill_clean', 'in_distill'),
                   ('in_distill_clean', 'peer'), ('in_distill_clean', 'in_clean'), ('in_distill', 'in_plain'), ('in_distill', 'peer'), (sp, tch), (tch, plain),
                   (tch, 'gbdt'), ('ham_noakiec', 'ham_akiec1'), (sp, 'ham_akiec1'), (sp, f'{sp}_e3'), (plain, f'{plain}_e3'), ('peer', 'peer_e3'),
                   (tch, f'{tch}_e3'), (sp, 'peer_e3'), ('in_clean_e3', 'in_plain_e3'), ('in_distill_clean_e3', 'in_distill_e3'),
                   ('in_distill_e3', 'in_plain_e3'), ('ham_plain_e3', 'in_plain_e3'), ('joint_clean', 'in_clean'), ('joint_clean_w4_e6', 'in_clean'),
                   ('joint_clean_w4_e6', 'peer'), ('joint_full_clean_e6', 'in_clean'), ('joint_full_clean_e6', 'peer'), ('joint_full_clean_e6', 'in_distill_clean'), ('joint_full_clean_e6', 'joint_clean_w4_e6'),
                   ('joint_full_distill_e6', 'joint_full_clean_e6'), ('joint_full_distill_e6', 'in_distill_clean'), ('joint_full_distill_e6', 'peer'),
                   ('in_soft_teacher', 'in_clean'), ('in_soft_teacher', 'in_distill_clean'), ('in_soft_gbdt', 'in_clean')] + \
                  [(m, base) for m, (base, e) in budget.items() if e != '3']:
        if (x, ref) in seen or x == ref: continue
        seen.add((x, ref))
        if x not in models or ref not in models: continue
        rs = {seed_of(c): c for c in models[ref]}
        both = [c for c in models[x] if seed_of(c) in rs] or models[x]
        B = T[[rs.get(seed_of(c), models[ref][0]) for c in both]].to_numpy()
        dp = paired_diff_ci(partial_auc, y, T[both].to_numpy(), B, g); da = paired_diff_ci(roc_auc, y, T[both].to_numpy(), B, g)
        L.append(f"- {x} minus {ref}: pAUC {fmt_ci(dp, 4)}, AUC {fmt_ci(da)}")
    # subgroups: AUC per skin type, without actinic keratoses, with / without ink marks
    meta = pad.df.set_index(pad.spec.id_col).loc[T.image_id.astype(str)]
    X = pad_images(pad, a); pos = pd.Series(np.arange(len(pad.df)), index=pad.df[pad.spec.id_col].to_numpy()).loc[T.image_id.astype(str)].to_numpy()
    inkd = ink_share(X)[pos]
    subs = {'skin type I-II': meta.fitspatrick.isin([1, 2]).to_numpy(), 'skin type III-VI': meta.fitspatrick.isin([3, 4, 5, 6]).to_numpy(),
            'skin type unknown': meta.fitspatrick.isna().to_numpy(), 'without actinic keratoses': (meta.diagnostic != 'ACK').to_numpy(),
            f'ink marks (> {a.ink:g} of pixels)': inkd > a.ink, 'no ink marks': inkd <= a.ink}
    L += ["", "AUC by subgroup (mean over seeds; images, malignant):", "", "| model | " + " | ".join(f"{k} ({m.sum()}, {int(y[m].sum())})" for k, m in subs.items()) + " |",
          "|---|" + "---|" * len(subs)]
    for m in res:
        cells = []
        for k, msk in subs.items():
            ok = len(np.unique(y[msk])) == 2
            cells.append(f"{np.mean([roc_auc(y[msk], T[c].to_numpy()[msk]) for c in models[m]]):.3f}" if ok else 'n/a')
        L.append(f"| {m} | " + " | ".join(cells) + " |")
    L += ["", f"Ink marks: {int((inkd > a.ink).sum())} photos ({int(y[inkd > a.ink].sum())} malignant) have more than {a.ink:g} of their pixels "
          f"ink-coloured; malignant share {y[inkd > a.ink].mean():.2f} with marks against {y[inkd <= a.ink].mean():.2f} without."]
    fold_models = sorted(work.glob(f'{sp}_s*_f*.pth'))
    if fold_models:                # the shortcut test: the marked photos again with their marks painted out, each by its fold's model
        seed = fold_models[0].stem.rsplit('_f', 1)[0].rsplit('_s', 1)[1]
        marked = inkd > a.ink; z0, z1 = np.full(len(T), np.nan), np.full(len(T), np.nan)
        for f in range(5):
            mf = f'{sp}_s{seed}_f{f}.pth'
            if not (work/mf).exists(): continue
            rows = np.flatnonzero((T.fold == f).to_numpy() & marked)
            sd = torch.load(work/mf, weights_only=True)
            z0[rows] = model_logits(sd, X[pos[rows]]); z1[rows] = model_logits(sd, paint_out(X[pos[rows]]))
        ok = ~np.isnan(z0)
        zc = T[f'{sp}_s{seed}'].to_numpy().copy(); zc[ok] = z1[ok]
        sig = lambda z: 1 / (1 + np.exp(-z))
        L += [f"Marks painted out ({sp}, seed {seed}, each photo by its own fold's model, {int(ok.sum())} marked photos): mean probability "
              f"{sig(z0[ok]).mean():.3f} with the marks, {sig(z1[ok]).mean():.3f} without (malignant {sig(z0[ok & (y == 1)]).mean():.3f} -> {sig(z1[ok & (y == 1)]).mean():.3f}, "
              f"benign {sig(z0[ok & (y == 0)]).mean():.3f} -> {sig(z1[ok & (y == 0)]).mean():.3f}); AUC over all photos {roc_auc(y, T[f'{sp}_s{seed}']):.3f} -> "
              f"{roc_auc(y, zc):.3f} with the marked photos painted out."]
    kept = {}                       # test-time augmentation: each kept fold model on its own fold's photos, one view and the 8 flips and rotations
    for f in sorted(work.glob('*_s*_f*.pth')): kept.setdefault(f.stem.rsplit('_f', 1)[0], []).append(f)
    if kept: L += ["", "Test-time augmentation (the 8 flips and rotations) on the kept fold models, each on its own fold's photos:", ""]
    for ms, fs in kept.items():
        z1, zt, ok, wins = np.zeros(len(T)), np.zeros(len(T)), np.zeros(len(T), bool), 0
        Xm = pad_images(pad, a, run_size(ms, a.size))     # the photos at the model's own training size
        for f in fs:
            rows = np.flatnonzero((T.fold == int(f.stem.rsplit('_f', 1)[1])).to_numpy()); ok[rows] = True
            z1[rows] = kept_logits(f, Xm[pos[rows]], 'pad'); zt[rows] = kept_logits(f, Xm[pos[rows]], 'pad_tta', tta=True)
            wins += roc_auc(y[rows], zt[rows]) > roc_auc(y[rows], z1[rows])
        L.append(f"- {ms} ({len(fs)} folds, {int(ok.sum())} photos): AUC {roc_auc(y[ok], z1[ok]):.3f} -> {roc_auc(y[ok], zt[ok]):.3f}, "
                 f"pAUC {partial_auc(y[ok], z1[ok]):.4f} -> {partial_auc(y[ok], zt[ok]):.4f}; higher AUC with TTA in {wins} of {len(fs)} folds")
    H = json.loads((work/'ham.json').read_text()) if (work/'ham.json').exists() else {}   # the HAM10000 pre-trainings' scores, when this folder made them
    if H or kept:
        L += ["", "HAM10000 holdout (fold 0 of the lesion-grouped folds, HAM10000's labels, 1,697 images):", ""]
        L += [f"- {k}: pAUC {v['pauc']:.4f}, AUC {v['auc']:.3f}" for k, v in H.items()]
        if kept:                    # the phone-photo students back on dermoscopy: each fold's model on the HAM10000 holdout
            ham = ham10000(a.ham); hold = ham.df[ham.df.fold == 0]
            for ms, fs in kept.items():
                m, seed = ms.rsplit('_s', 1); Xh = cached_images(hold.image_ref, hold.image_id, run_size(ms, a.size), a)
                zs = [kept_logits(f, Xh, 'ham_holdout') for f in fs]
                ph, ah = [partial_auc(hold.malignant, z) for z in zs], [roc_auc(hold.malignant, z) for z in zs]
                L.append(f"- {m} ({len(ph)} fold models, seed {seed}): pAUC {', '.join(f'{v:.4f}' for v in ph)} (mean {np.mean(ph):.4f}), "
                         f"AUC {', '.join(f'{v:.3f}' for v in ah)} (mean {np.mean(ah):.3f})")
    text = '\n'.join(L); print(text); (work/'summary.md').write_text(text + '\n')
    (work/'summary.json').write_text(json.dumps(res, indent=1, default=float))

def merge(work, dirs):
    "Join the out-of-fold columns of several work folders (same photos and folds; e.g. one seed or some folds each) into work/oof.csv, and copy their kept students"
    keys = ['image_id', 'patient_id', 'target', 'fold']
    T = pd.read_csv(work/'oof.csv') if (work/'oof.csv').exists() else None
    for d in dirs:
        if not (d/'oof.csv').exists(): raise FileNotFoundError(f"{d/'oof.csv'}: no out-of-fold scores in that work folder")
        U = pd.read_csv(d/'oof.csv')
        if T is None: T = U[keys].copy()
        if not U[keys].astype(str).equals(T[keys].astype(str)): raise ValueError(f"{d/'oof.csv'}: other photos or folds than the first folder's")
        for c in U.columns.difference(keys):    # the folds of a column run in several folders are joined; the first folder's values win
            T[c] = T[c].fillna(U[c]) if c in T else U[c]
        for f in d.glob('*_s*_f*.pth'): shutil.copy2(f, work/f.name)
        if (d/'ham.json').exists() and not (work/'ham.json').exists(): shutil.copy2(d/'ham.json', work/'ham.json')
    T.to_csv(work/'oof.csv', index=False); log(f"merged {len(dirs)} folders into {work/'oof.csv'}: {len(T.columns) - len(keys)} columns")

def main():
    global ARCH
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--ham', default='../shared/data/ham10000'); ap.add_argument('--pad', default='../shared/data/pad_ufes20')
    ap.add_argument('--work', default='runs/phone_photos'); ap.add_argument('--cache', default='.cache')
    ap.add_argument('--size', type=int, default=128); ap.add_argument('--arch', default=ARCH, help='timm backbone of every model (name the run with --tag)'); ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--epochs', type=int, default=10, help='unfrozen epochs of fine_tune on the phone photos (10: chosen on these folds; the former 3 gave 0.771 against 0.806 AUC, in_clean, seed 0)')
    ap.add_argument('--teacher-epochs', type=int, default=0, help='unfrozen epochs of the teachers (0: --epochs), e.g. a longer student beside the shipped teacher')
    ap.add_argument('--ham-epochs', type=int, default=3, help='unfrozen epochs of the HAM10000 pre-training')
    ap.add_argument('--lr', type=float, default=4e-3); ap.add_argument('--alpha', type=float, default=0.5); ap.add_argument('--T', type=float, default=2.)
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2]); ap.add_argument('--folds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    ap.add_argument('--models', nargs='+', default=['in_distill_clean', 'peer', 'in_clean'], choices=list(STUDENTS) + list(TEACHERS) + ['peer'])
    ap.add_argument('--shipped', default='in_distill_clean_e20', help="the recipe that ships (chosen on these folds): a student of STUDENTS with its run's tag")
    ap.add_argument('--ink', type=float, default=0.005, help='share of ink-coloured pixels above which a photo counts as marked')
    ap.add_argument('--pretrain', nargs='*', default=['exclude', 'malignant'], choices=['exclude', 'malignant'],
                    help="HAM10000 pre-trainings to make (akiec out / akiec malignant; none: `--pretrain` alone); the students from HAM10000 start from 'exclude'")
    ap.add_argument('--replay', type=int, default=2000, help="joint recipes: this many HAM10000 pool images (akiec out) train beside the phone photos")
    ap.add_argument('--pad-weight', type=float, default=2., help='joint recipes: the phone photos are drawn this many times per epoch')
    ap.add_argument('--replay-weight', type=float, default=0.3, help="joint_full recipes: this share of the whole HAM10000 pool (akiec out) is drawn afresh each epoch (0.3: about 1,950 images)")
    ap.add_argument('--pad-bs', type=int, default=32, help='batch size on the phone photos (about 400 training images a fold)')
    ap.add_argument('--keep-seed', type=int, default=1, help="keep the students of this seed (one per fold) for the ink-mark test, test-time augmentation and the HAM10000 holdout")
    ap.add_argument('--tag', default='', help="suffix of this run's columns and kept models, e.g. _e20 for another budget: merged beside the default run's and compared with it")
    ap.add_argument('--ema', type=float, default=0., help='screening: EMA of the students\' weights with this decay per step (0: none)')
    ap.add_argument('--mixup', type=float, default=0., help='screening: mixup with Beta(alpha, alpha) for the plain students (0: none)')
    ap.add_argument('--aug', action='store_true', help="screening: heavier scale and colour augmentation for the teachers and students (heavy_aug)")
    ap.add_argument('--drop-path', type=float, default=0., help='screening: stochastic depth rate of the students (0: none)')
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--summary', action='store_true')
    ap.add_argument('--merge', nargs='+', default=None, metavar='DIR',
                    help="join these work folders' out-of-fold columns and kept students into --work, then summarise "
                         "(runs split over processes, e.g. one seed each with --threads 1)")
    a = ap.parse_args()
    try: shipped_base(a.shipped)
    except ValueError as e: ap.error(str(e))
    torch.set_num_threads(a.threads)
    ARCH = a.arch
    work = a.work_path = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    pad = pad_ufes20(a.pad)
    if a.merge: merge(work, [Path(d) for d in a.merge])
    if a.summary or a.merge: return summary(work, pad, a)
    if run_size(a.tag, ap.get_default('size')) != a.size:      # a merged summary scores each kept student at its tag's side (128 px without one)
        ap.error(f"--size {a.size} with --tag {a.tag!r}: name the side in the tag, e.g. --tag _p{a.size}e{a.epochs}")
    if a.aug != ('aug' in tag_tokens(a.tag)): ap.error(f"--aug goes with an 'aug' token in --tag (e.g. --tag _e{a.epochs}_aug), got --tag {a.tag!r}")
    lr_tok = tag_value(a.tag, 'lr')     # lr8: 8e-3
    if (a.lr != ap.get_default('lr') or lr_tok) and lr_tok != f'{a.lr * 1e3:g}':
        ap.error(f"--lr {a.lr:g} with --tag {a.tag!r}: the tag names the rate in thousandths (--lr 8e-3 goes with lr8; the default 4e-3 with none)")
    oof_f = work/'oof.csv'
    T = pd.read_csv(oof_f) if oof_f.exists() else pad.df[['image_id', 'patient_id', 'malignant', 'fold']].rename(columns=dict(malignant='target'))
    def save(col, fold, z):
        if col not in T: T[col] = np.nan
        T.loc[(T.fold == fold).to_numpy(), col] = z
        T.to_csv(oof_f.with_suffix('.tmp'), index=False); oof_f.with_suffix('.tmp').replace(oof_f)
    sds = {amb: ham_pretrain(a, work, amb, pad) for amb in a.pretrain}
    if 'exclude' not in sds and any(s == 'ham' for m in a.models for s in starts(m)):
        ap.error("--pretrain must include 'exclude': the students and teachers from HAM10000 start from it")
    for name in ('ham_akiec1', 'ham_noakiec'):      # zero-shot: the same scores for every seed
        if f'{name}_s0' not in T and (work/f'{name}_pad.npy').exists():
            zp = np.load(work/f'{name}_pad.npy')
            for f in range(5): save(f'{name}_s0', f, zp[(pad.df.fold == f).to_numpy()])
    if 'gbdt_s0' not in T:          # the clinical data alone: the metadata GBDT, out of fold
        from lesion_fastai.metamodel import oof_predict
        from lesion_fastai.metrics import logit
        oof, _ = oof_predict(pad, progress=False)
        for f in range(5): save('gbdt_s0', f, logit(oof[(pad.df.fold == f).to_numpy()].to_numpy()))
    for seed in a.seeds:
        for fold in a.folds:
            done = lambda m: f'{m}{a.tag}_s{seed}' in T and T.loc[T.fold == fold, f'{m}{a.tag}_s{seed}'].notna().all()
            todo = [m for m in a.models if not done(m)]
            if not todo: continue
            t0 = time.time()
            if 'peer' in todo: save(f'peer{a.tag}_s{seed}', fold, peer(pad, fold, a, seed))
            for m, z in pad_models(pad, fold, a, seed, sds.get('exclude'), todo).items(): save(f'{m}{a.tag}_s{seed}', fold, z)
            y = T.target[T.fold == fold]
            log(f"seed {seed} fold {fold} ({time.time() - t0:.0f}s): " + ', '.join(f"{m} AUC {roc_auc(y, T.loc[T.fold == fold, c]):.3f}"
                for m in list(STUDENTS) + list(TEACHERS) + ['peer'] if (c := f'{m}{a.tag}_s{seed}') in T and T.loc[T.fold == fold, c].notna().all()))
    summary(work, pad, a)

if __name__ == '__main__': main()
