"""Benchmark: one phone student for several sources, judged inside each source and on sources it never saw. Not a test.

Sources: the PAD-UFES-20 smartphone photos (5 patient-grouped folds, seed 0: `common.pad_ufes20`), the
real ISIC 2024 tiles (5 folds by image: no patient ids) and, never trained on, the HAM10000 holdout (fold 0 of its
lesion-grouped folds, 1,697 dermoscopy images, HAM10000's labels). For each fold k, one plain student per recipe
(`train_model`, the `phone` recipe's training: Lite0, 128 px, 1 + 20 epochs, lr 8e-3, positives 3x, no simulated
degradations, one view) is trained on the recipe's sources minus their fold k, and scores fold k of PAD-UFES-20 and of
the tiles, and the HAM10000 holdout; scores are pooled over folds. A source a recipe does not train on is a source it
never saw. Recipes (`--recipes`):

- `pad`: the photos alone (today's `phone` recipe, plain);
- `pad_tiles`: the photos and the tiles, the tiles drawn at `--tiles-weight` of their rows each epoch;
- `tiles`: the tiles alone (drawn the same way): the photos are then a source it never saw;
- `pad_capture`, `pad_capture_mild`: the photos alone, each training image degraded with probability 0.5 by one of the
  simulated capture degradations (`PhoneDegradeCallback`) at a severity drawn from 1-5 (the dermoscopy recipe's) or
  from 1-3 (milder);
- `pad_tiles_capture_mild`: the photos and the tiles, with the milder degradations;
- `pad_tiles_sog`, `pad_sog`: `pad_tiles` and `pad` with Shades-of-Gray colour constancy (p = 6) inside the student
  (`backbones.ShadesOfGray`): each image divided by its own light, so that a source's light is no cue;
- `pad_tiles_sog_body`, `pad_sog_body`: `pad_tiles_sog` and `pad_sog` with the backbone's learning rate a tenth of the head's
  in the unfrozen phase (`train_model`'s `body_rate`; fastai's `fine_tune`: a hundredth);
- `pad_sog_colour`: `pad_sog` with random colour while training (`FastColour` below: a
  hue turn of up to 14 degrees, saturation within 30%, a gain per channel within 10%, on 3 images in 4);
- `peer_pad`, `peer_pad_tiles`: the peer (`models.peer_learner`: `vision_learner`'s model and head, fastai's `fine_tune`
  schedule, no teacher, no degradations) on the photos, or on the photos and the tiles drawn as above: what a fastai
  user would do with the same images and the same budget (the same images drawn each epoch, the same epochs and lr).

`--robustness` also scores each fold's photos under JPEG, defocus, low resolution and colour cast at severity 3 (the
report's robustness measure, `degrade.robustness`), and the summary gives the share of the clean pAUC each recipe keeps.

`--loso` leaves each whole source out instead: for each family of recipe (`student`: the plain student; `student_sog`:
the plain student with colour constancy; three candidates on top of it against the camera and the clinic:
`student_mix`, `MixStyle` (feature styles mixed between the images of a batch while training), `student_zoom`, zoom both
ways while training (`zoom_aug`), `student_short`, 1 + 8 epochs, `student_swa`, the weights averaged over the last half of
training (`WeightAverage`), `student_label`, one label definition, HAM10000's akiec out of training (`ONE_LABEL`), `student_body`, the
backbone's learning rate a tenth of the head's instead of a hundredth (`train_model`'s `body_rate`); `peer`: the peer) and each of the three sources (the photos, the tiles, the HAM10000 holdout), one model trained on every image
of the other two (HAM10000: its pool, the four folds that are not the holdout, drawn at `--ham-weight` of its rows each
epoch) scores every image of the source left out. HAM10000 left out reuses the family's fold models (`pad_tiles`,
`pad_tiles_sog`, `peer_pad_tiles`) where they exist (their mean logit; each was trained on four fifths of the photos and
the tiles). The summary (`--loso-out`) gives each source left out, the mean over the three, and the paired differences
between families (the mean's interval: groups resampled over the three sources together); with the photos-only student
(`pad`, 5-fold results) on the two sources it never saw.

`--ham-scoring one_label` scores HAM10000's holdout without its akiec (actinic keratosis or Bowen's disease: malignant by
HAM10000's labels, where PAD-UFES-20 calls actinic keratosis benign) in `--loso` and `--seeds-summary` summaries.

`--seeds-summary 0 1 2` puts that last comparison (the colour-constancy student left out against the photos-only
student) over several seeds, from the results of `--recipes pad --seed S` and `--loso --families student_sog --seed S`
(`--seeds-out`): each seed's numbers and their mean, with intervals over the same resampled images for every seed.

`--seed-means FAMILY:FILE,FILE,...` puts families' `--loso` summaries of several seeds side by side (`--seed-means-out`): each
source left out, seed by seed, and the mean over the seeds, for families whose logits were not all kept.

Each fold's logits are kept in `--work` and in `benchmarks/results/sources_scores.csv.gz` (a rerun skips them; the summaries
rebuild from the latter without `--work`). The summary (`--out`) gives AUC and pAUC with 95%
bootstrap intervals per source (grouped by patient for the photos, by lesion for HAM10000), and paired differences.

    python benchmarks/sources.py --recipes pad pad_tiles --out benchmarks/results/sources.md
    python benchmarks/sources.py --recipes pad pad_capture pad_capture_mild --robustness --out benchmarks/results/capture.md
    python benchmarks/sources.py --loso --loso-out benchmarks/results/sources_loso.md
    python benchmarks/sources.py --loso --families student peer student_sog
    python benchmarks/sources.py --loso --families student_sog student_mix student_zoom student_short --work runs/sources_mix --loso-out benchmarks/results/sources_loso_dg.md
    python benchmarks/sources.py --loso --families student_sog student_swa --work runs/sources_swa --loso-out benchmarks/results/sources_loso_swa.md
    python benchmarks/sources.py --seeds-summary 0 1 2 --seeds-out benchmarks/results/sources_seeds.md
    python benchmarks/sources.py --seed-means student_sog:sources_loso.md,sources_loso_s1.md,sources_loso_s2.md peer:sources_loso.md,sources_loso_peer_s1.md,sources_loso_peer_s2.md
    python benchmarks/sources.py --loso --families student_sog student_label --work runs/sources_swa --loso-out benchmarks/results/sources_loso_label.md
    python benchmarks/sources.py --recipes pad pad_sog pad_sog_colour --out benchmarks/results/colour.md
    python benchmarks/sources.py --loso --families student_sog student_body --work runs/sources_swa --loso-out benchmarks/results/sources_loso_body.md
    python benchmarks/sources.py --seeds-summary 0 1 --seeds-family student_body --seeds-out benchmarks/results/sources_seeds_body.md
    python benchmarks/sources.py --recipes pad pad_sog_body pad_tiles_sog_body --robustness --out benchmarks/results/sources_body.md
    python benchmarks/sources.py --recipes pad pad_sog_body --seed 1 --robustness --out benchmarks/results/sources_body_s1.md
    python benchmarks/sources.py --loso --families student_body peer --seed 1 --ham-scoring all --loso-out benchmarks/results/sources_loso_body_peer_s1.md
"""
import argparse, time
from pathlib import Path
import numpy as np, pandas as pd, torch
import fastprogress.fastprogress as fpb
from lesion_fastai.callbacks import plain_output
from lesion_fastai.data import read_lesions, find_shared
from lesion_fastai.sources import combine_sources
from lesion_fastai.splits import add_folds
from lesion_fastai.train import train_model
from lesion_fastai.models import save_bundle
from lesion_fastai.cache import ImageCache
from lesion_fastai.datablock import lesion_aug
from fastai.torch_core import TensorImage
from fastai.vision.augment import RandTransform
from fastai.callback.core import Callback
from lesion_fastai.pipeline import bundle_logits, logit_fn
from lesion_fastai.metrics import roc_auc, partial_auc, bootstrap_ci, paired_diff_ci, fmt_ci
from lesion_fastai.report import md_table
from lesion_fastai.degrade import PhoneDegradeCallback, robustness
from common import ham10000, pad_ufes20, train_args

RECIPES = dict(pad=('pad_ufes20',), pad_tiles=('pad_ufes20', 'isic2024_tiles'), tiles=('isic2024_tiles',), pad_capture=('pad_ufes20',),
               pad_capture_mild=('pad_ufes20',), pad_tiles_capture_mild=('pad_ufes20', 'isic2024_tiles'),
               peer_pad=('pad_ufes20',), peer_pad_tiles=('pad_ufes20', 'isic2024_tiles'), pad_tiles_sog=('pad_ufes20', 'isic2024_tiles'), pad_sog=('pad_ufes20',),
               pad_sog_colour=('pad_ufes20',), pad_tiles_sog_mix=('pad_ufes20', 'isic2024_tiles'), pad_tiles_sog_zoom=('pad_ufes20', 'isic2024_tiles'),
               pad_tiles_sog_short=('pad_ufes20', 'isic2024_tiles'), pad_tiles_sog_swa=('pad_ufes20', 'isic2024_tiles'),
               pad_tiles_sog_label=('pad_ufes20', 'isic2024_tiles'), pad_tiles_sog_body=('pad_ufes20', 'isic2024_tiles'),
               pad_sog_body=('pad_ufes20',))
CAPTURE = dict(pad_capture=dict(p=0.5, severity=(1, 5)), pad_capture_mild=dict(p=0.5, severity=(1, 3)),
               pad_tiles_capture_mild=dict(p=0.5, severity=(1, 3)))   # simulated capture degradations while training
CONSTANCY = dict(pad_tiles_sog=6., pad_sog=6., pad_sog_colour=6., pad_tiles_sog_mix=6., pad_tiles_sog_zoom=6., pad_tiles_sog_short=6., pad_tiles_sog_swa=6., pad_tiles_sog_label=6., pad_tiles_sog_body=6., pad_sog_body=6.)                  # Shades-of-Gray colour constancy inside the student
COLOUR = ('pad_sog_colour',)                                           # random hue, saturation and colour cast while training
MIXSTYLE = ('pad_tiles_sog_mix',)                                      # feature styles mixed between images while training (`MixStyle`)
ZOOM = ('pad_tiles_sog_zoom',)                                         # a wider scale augmentation (`zoom_aug`)
EPOCHS = dict(pad_tiles_sog_short=8)                                   # fewer unfrozen epochs than --epochs
ONE_LABEL = ('pad_tiles_sog_label',)                                   # HAM10000's akiec out of training (`loso_table`'s `ambiguous`)
AVERAGE = ('pad_tiles_sog_swa',)                                       # the weights averaged over the last half of the unfrozen epochs (`WeightAverage`)
BODY_RATE = dict(pad_tiles_sog_body=0.1, pad_sog_body=0.1)                             # the backbone's rate as a share of the head's in the unfrozen phase (`fit_learner`'s body_rate; fine_tune: 0.01)

class FastColour(RandTransform):
    "Random colour per image, one 3x3 matrix each: a hue turn about the grey axis, a saturation change and a colour cast (measured here; it does not pay, so it is not in the library)"
    split_idx, order = 0, 41
    def __init__(self, max_hue=0.04, max_saturation=0.3, max_gain=0.1, p=0.75):   # hue in turns (0.04: 14 degrees); relative changes
        super().__init__(p=1.); self.max_hue, self.max_saturation, self.max_gain, self.p_each = max_hue, max_saturation, max_gain, p
    def before_call(self, b, split_idx):
        super().before_call(b, split_idx)
        x = b[0] if isinstance(b, (tuple, list)) else b
        n, dev = x.shape[0], x.device
        on = (torch.rand(n, device=dev) < self.p_each).float()
        u = lambda *s: (torch.rand(n, *s, device=dev) * 2 - 1) * on.view(n, *[1] * len(s))
        th = (u() * self.max_hue * 2 * np.pi).view(n, 1, 1)
        I, G = torch.eye(3, device=dev), torch.full((3, 3), 1 / 3, device=dev)            # identity; projection on the grey axis
        K = torch.tensor([[0., -1, 1], [1, 0, -1], [-1, 1, 0]], device=dev) / 3 ** 0.5      # cross product with the grey axis
        R = th.cos() * (I - G) + th.sin() * K + G                                           # Rodrigues: a turn about the grey axis
        S = G + (1 + u() * self.max_saturation).view(n, 1, 1) * (I - G)                      # scale the distance from grey
        self.M = (1 + u(3) * self.max_gain).view(n, 3, 1) * (S @ R)                          # then each channel's gain
    def encodes(self, x:TensorImage): return (self.M @ x.flatten(2)).view_as(x).clamp_(0, 1)   # one batched 3x3 product

class MixStyle(Callback):
    """MixStyle (Zhou et al., Domain generalization with MixStyle, ICLR 2021): while training, after each of the backbone's
    first `stages`, with probability `p` per batch, every image's per-channel feature mean and standard deviation are
    mixed with those of another image of the batch (a random pairing, weight ~ Beta(alpha, alpha)). A batch holds several
    sources, so a camera's or a clinic's style stops being a cue. Nothing changes at inference (the hooks act only in
    training mode and are removed after the fit). Measured here, not in the library."""
    order = 0
    def __init__(self, p=0.5, alpha=0.1, stages=(0, 1, 2), eps=1e-6): self.p, self.alpha, self.stages, self.eps = p, alpha, stages, eps
    def before_fit(self):
        self.after_fit()                                        # a fit that raised skips after_fit: its hooks go before new ones come
        blocks = self.learn.model.backbone.body.blocks          # timm EfficientNet's stages (`ImageModel.backbone` is a `LesionBackbone`)
        self.hooks = [blocks[i].register_forward_hook(self.mix) for i in self.stages]
    def after_fit(self):
        for h in getattr(self, 'hooks', []): h.remove()
        self.hooks = []
    def mix(self, m, inp, x):
        if not m.training or torch.rand(1).item() > self.p: return None
        n = x.shape[0]
        mu, sig = x.mean((2, 3), keepdim=True).detach(), (x.var((2, 3), keepdim=True) + self.eps).sqrt().detach()
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((n, 1, 1, 1)).to(x)
        j = torch.randperm(n, device=x.device)
        return (x - mu) / sig * (lam * sig + (1 - lam) * sig[j]) + lam * mu + (1 - lam) * mu[j]

class WeightAverage(Callback):
    """Weight averaging over the end of training (SWA, Izmailov et al. 2018; dense as in SWAD, Cha et al., NeurIPS 2021, the
    strongest single method of DomainBed's comparisons): in the unfrozen phase, from the start of its last `frac` of epochs,
    the weights after every training batch are averaged (`torch.optim.swa_utils.AveragedModel`, the batch-norm statistics
    with them), and the average replaces the weights when the phase ends. A flat region's centre generalises to a shifted
    domain better than the point the schedule stops at. Measured here, not in the library; a run resumed from a checkpoint
    inside the averaged epochs averages only what it trained after resuming."""
    order = 90
    def __init__(self, frac=0.5): self.frac = frac
    def before_fit(self):
        self.on = getattr(self.learn.opt, 'frozen_idx', 1) == 0          # the unfrozen phase only
        self.avg, self.first = None, int(round(self.n_epoch * (1 - self.frac)))
    def after_batch(self):
        if not (self.on and self.training and self.epoch >= self.first): return
        if self.avg is None: self.avg = torch.optim.swa_utils.AveragedModel(self.learn.model, use_buffers=True)
        self.avg.update_parameters(self.learn.model)
    def after_fit(self):                                              # (`get_preds` calls before_fit and after_fit too: nothing averaged then)
        if self.on and self.avg is not None:
            self.learn.model.load_state_dict(self.avg.module.state_dict())
            self.n_averaged, self.avg = int(self.avg.n_averaged), None    # how many weights went into the average

def zoom_aug(min_zoom=0.7, max_zoom=1.6):
    "`lesion_aug` with zoom both ways (0.7x to 1.6x, against 1x to 1.15x): the sources frame a lesion at different scales (a 15 mm tile, a phone at arm's length, a dermatoscope)"
    return lesion_aug(min_zoom=min_zoom, max_zoom=max_zoom)

def recipe_kwargs(recipe:str, a) -> dict:
    "What recipe `recipe` sets in `train_model` beyond the shared settings: its unfrozen epochs, batch transforms and callbacks"
    kw = dict(epochs=EPOCHS.get(recipe, a.epochs))
    if recipe in COLOUR: kw['batch_tfms'] = lesion_aug() + [FastColour()]
    if recipe in ZOOM: kw['batch_tfms'] = zoom_aug()
    if recipe in MIXSTYLE: kw['cbs'] = [MixStyle()]
    if recipe in AVERAGE: kw['cbs'] = kw.get('cbs', []) + [WeightAverage()]
    if recipe in BODY_RATE: kw['body_rate'] = BODY_RATE[recipe]
    return kw

def recipe_model(recipe:str) -> dict:
    "The model recipe `recipe` trains: its `train_model` role (the peer for `peer_*`) and its colour constancy"
    return dict(role='peer' if recipe.startswith('peer') else 'student', constancy=CONSTANCY.get(recipe, 0.))
ROBUST_KINDS = ('jpeg', 'defocus', 'lowres', 'color_cast')             # the report's robustness measure, at severity 3

def ci(metric, y, z, g, n_boot, nd=3):
    "`metric` with its 95% bootstrap interval over groups `g`, as text"
    return fmt_ci(bootstrap_ci(metric, y, z, g, n_boot=n_boot), nd)

def paired_ci(metric, y, z1, z0, g, n_boot, nd=3):
    "`metric` of scores `z1` minus that of `z0` on the same images, with its 95% paired bootstrap interval, as text"
    return fmt_ci(paired_diff_ci(metric, y, z1, z0, g, n_boot=n_boot), nd)

def sources(seed=0):
    "PAD-UFES-20 and the tiles in one table with each source's own folds, and the HAM10000 holdout"
    pad = pad_ufes20(seed=seed)
    tiles = add_folds(read_lesions(find_shared('isic2024_tiles'), progress=False), 5, seed)
    both = combine_sources([pad, tiles])
    both.df['fold'] = np.concatenate([pad.df.fold.to_numpy(), tiles.df.fold.to_numpy()])
    ham = ham10000(seed=0)
    return both, ham.subset((ham.df.fold == 0).to_numpy())

SCORES = Path('benchmarks/results/sources_scores.csv.gz')   # every model's logits, kept with the results: the summaries rebuild without `--work`

_READ = {}                                       # SCORES as last read, by its modification time: read once until it changes

def _scores() -> pd.DataFrame:
    if not SCORES.exists(): return pd.DataFrame(columns=['file', 'part', 'image_id', 'logit', 'seconds'])
    t = SCORES.stat().st_mtime_ns
    if _READ.get('t') != t: _READ.update(t=t, df=pd.read_csv(SCORES, dtype={'file': str, 'part': str, 'image_id': str}))
    return _READ['df']

def save_logits(f:Path, out:dict):
    "Write a model's logits `out` (ids, logits, seconds; `ham`: its HAM10000 holdout logits, in the holdout's order) to its cache file `f` and into `SCORES`"
    np.savez(f, **out)
    new = pd.concat([pd.DataFrame(dict(file=f.stem, part=k, image_id=out['ids'] if k == 'logits' else np.arange(len(out[k])).astype(str),
                                       logit=out[k], seconds=float(out['seconds']))) for k in ('logits', 'ham') if k in out])
    old = _scores()
    pd.concat([old[old.file != f.stem], new]).to_csv(SCORES, index=False, float_format='%.7g')

def have_logits(f:Path) -> bool:
    "Whether the logits of cache file `f` exist: the file in `--work`, or its rows in `SCORES`"
    return f.exists() or (SCORES.exists() and (_scores().file == f.stem).any())

def load_logits(f:Path) -> dict:
    "The logits `save_logits` kept: from the cache file `f` where `--work` has it, else from `SCORES`"
    if f.exists(): return dict(np.load(f))
    S = _scores(); S = S[S.file == f.stem]
    if S.empty: raise FileNotFoundError(f"{f}: no such file, and no rows for {f.stem!r} in {SCORES}")
    z, h = S[S.part == 'logits'], S[S.part == 'ham']
    return dict(ids=z.image_id.to_numpy().astype(str), logits=z.logit.to_numpy(), seconds=float(S.seconds.iloc[0]),
                **({'ham': h.logit.to_numpy()} if len(h) else {}))

def fold_files(a, recipe) -> list:
    "The 5 fold results of `recipe` for seed `a.seed` (`fold_logits`' cache files)"
    return [Path(a.work)/f"{recipe}_s{a.seed}_f{k}.npz" for k in range(5)]

def fold_logits(a, both, ham, ham_images, recipe, k):
    "Train recipe `recipe` without fold k; its logits on fold k of both sources and on the HAM10000 holdout (cached)"
    f = fold_files(a, recipe)[k]
    if have_logits(f): return load_logits(f)
    t0 = time.time()
    keep = both.df.source.isin(RECIPES[recipe]).to_numpy() | (both.df.fold == k).to_numpy()   # training sources + every fold k
    d = both.subset(keep)
    w = {'isic2024_tiles': a.tiles_weight} if 'isic2024_tiles' in RECIPES[recipe] else None
    m = recipe_model(recipe)
    learn, logits = train_model(d, (d.df.fold == k).to_numpy(), m['role'], a.arch, size=a.size, bs=a.bs,
                                freeze_epochs=a.freeze_epochs, lr=a.lr, pos_weight=a.pos_weight, alpha=0.,
                                degrade_p=PhoneDegradeCallback(**CAPTURE[recipe]) if recipe in CAPTURE else 0.,
                                seed=a.seed, cache=Path(a.work)/'cache', path=Path(a.work)/'train', source_weights=w,
                                valid_every=0, checkpoint=f'ck_{recipe}_s{a.seed}_fold{k}', constancy=m['constancy'],
                                **recipe_kwargs(recipe, a))   # scored once, after training; resumable by epoch
    b = Path(a.work)/'models'/f'{recipe}_s{a.seed}_f{k}'
    save_bundle(learn, b)
    v = d.df[d.df.fold == k]
    out = dict(ids=v.image_id.to_numpy().astype(str), logits=logits, ham=bundle_logits(b, ham_images), seconds=time.time() - t0)
    save_logits(f, out)
    print(f"{recipe} fold {k}: {out['seconds']:.0f} s", flush=True)
    return out

def fold_robustness(a, both, recipe, k):
    "The fold model's pAUC on fold k's photos, clean and under each of `ROBUST_KINDS` at severity 3 (cached)"
    f = Path(a.work)/f'{recipe}_s{a.seed}_f{k}_robust.csv'
    if f.exists(): return pd.read_csv(f).rename(columns={'kind': 'degradation'})   # kept before the column's rename
    v = both.subset(((both.df.source == 'pad_ufes20') & (both.df.fold == k)).to_numpy())
    ims = np.asarray(ImageCache.build(v.df.image_ref, a.size, Path(a.work)/'cache', ids=v.ids).array)
    t = robustness(logit_fn(Path(a.work)/'models'/f'{recipe}_s{a.seed}_f{k}', threads=a.threads), ims, v.df.target.to_numpy(),
                   degradations=list(ROBUST_KINDS), severities=(3,), seed=a.seed).assign(recipe=recipe, fold=k)
    t.to_csv(f, index=False)
    return t

def robust_lines(R:pd.DataFrame) -> str:
    "Per recipe: the mean over folds of the clean pAUC and of each degraded pAUC, and the share of the clean pAUC kept"
    M = R.groupby(['recipe', 'degradation'], sort=False).pauc.mean().unstack()
    rows = [dict(recipe=r, clean=f"{M.loc[r, 'clean']:.4f}", **{k: f"{M.loc[r, k]:.4f} ({M.loc[r, k] / M.loc[r, 'clean']:.0%})" for k in ROBUST_KINDS},
                 kept=f"{np.mean([M.loc[r, k] for k in ROBUST_KINDS]) / M.loc[r, 'clean']:.0%}") for r in M.index]
    return ("\n\nCapture robustness on the photos (pAUC of each fold model on its own fold, mean over the 5 folds; in brackets the "
            "share of the clean pAUC; 'kept': the mean over the four degradations, as the report measures it):\n\n" + md_table(pd.DataFrame(rows)))

def summary(a, both, ham, res, R=None):
    "The markdown summary: each recipe on each source, and the paired differences"
    y = both.df.set_index('image_id').target; g = both.df.set_index('image_id').group
    yh, gh = ham.df.malignant.to_numpy(), ham.df.lesion_id.to_numpy()
    oof = {r: pd.concat([pd.Series(o['logits'], index=o['ids']) for o in folds]) for r, folds in res.items()}
    hamz = {r: np.mean([o['ham'] for o in folds], axis=0) for r, folds in res.items()}   # the mean logit of the 5 fold models
    rows, cols = [], {}
    for src, name in (('pad_ufes20', 'PAD-UFES-20 photos (folds)'), ('isic2024_tiles', 'ISIC 2024 tiles (folds)')):
        ids = both.df.image_id[both.df.source == src].to_numpy()
        for r in res:
            z = oof[r].loc[ids].to_numpy(); yy = y.loc[ids].to_numpy(); gg = g.loc[ids].to_numpy()
            cols[(src, r)] = (yy, z, gg)
            seen = src in RECIPES[r]
            rows.append(dict(source=name, recipe=r, seen='yes' if seen else '**no**', images=len(ids), malignant=int(yy.sum()),
                             AUC=ci(roc_auc, yy, z, gg, a.n_boot), pAUC=ci(partial_auc, yy, z, gg, a.n_boot, 4)))
    for r in res:
        cols[('ham10000', r)] = (yh, hamz[r], gh)
        rows.append(dict(source='HAM10000 holdout (dermoscopy)', recipe=r, seen='**no**', images=len(yh), malignant=int(yh.sum()),
                         AUC=ci(roc_auc, yh, hamz[r], gh, a.n_boot), pAUC=ci(partial_auc, yh, hamz[r], gh, a.n_boot, 4)))
    diffs = []
    rs = list(res)
    for src in ('pad_ufes20', 'isic2024_tiles', 'ham10000'):
        for i in range(len(rs)):
            for j in range(i + 1, len(rs)):
                yy, z1, gg = cols[(src, rs[j])]; _, z0, _ = cols[(src, rs[i])]
                diffs.append(dict(source=src, difference=f"{rs[j]} minus {rs[i]}", AUC=paired_ci(roc_auc, yy, z1, z0, gg, a.n_boot),
                                  pAUC=paired_ci(partial_auc, yy, z1, z0, gg, a.n_boot, 4)))
    secs = {r: sum(float(o['seconds']) for o in folds) for r, folds in res.items()}
    head = (f"# One phone student, several sources\n\n`python benchmarks/sources.py --recipes {' '.join(res)} --tiles-weight {a.tiles_weight}"
            f" --seed {a.seed}`, {time.strftime('%Y-%m-%d')}, this machine's 2 CPU cores. Plain students (no teacher) and the peer (`peer_*`: `vision_learner`'s model), "
            f"{a.arch}, {a.size} px, 1 + {a.epochs} epochs at lr {a.lr}, positives {a.pos_weight}x, one view; each image scored by the "
            f"model of its own fold (5 folds per source), HAM10000 by the mean logit of the 5 fold models. 'seen': whether the "
            f"recipe trains on that source (on its other folds). Intervals: 95% bootstrap over patients (photos), tiles "
            f"(tiles: no patient ids) and lesions (HAM10000), {a.n_boot} replicates. Training time (5 folds): "
            + ', '.join(f'{r} {s / 60:.0f} min' for r, s in secs.items()) + ".\n")
    Path(a.out).write_text(head + "\n" + md_table(pd.DataFrame(rows))
                           + ("\n\nPaired differences (same images):\n\n" + md_table(pd.DataFrame(diffs)) if diffs else '')
                           + (robust_lines(R) if R is not None else '') + "\n")
    print(Path(a.out).read_text())

FAMILIES = dict(student='pad_tiles', peer='peer_pad_tiles', student_sog='pad_tiles_sog', student_mix='pad_tiles_sog_mix',
                student_zoom='pad_tiles_sog_zoom', student_short='pad_tiles_sog_short', student_swa='pad_tiles_sog_swa',
                student_label='pad_tiles_sog_label', student_body='pad_tiles_sog_body')   # each family left out: its 5-fold recipe (photos + tiles), whose model it trains
FAMILY_TEXT = dict(student="the plain student (`train_model`, no teacher, clean images)",
                   student_sog="the plain student with Shades-of-Gray colour constancy (p = 6) inside the model",
                   student_mix="`student_sog` with MixStyle while training (`MixStyle`: each image's feature mean and std after the backbone's first three "
                               "stages mixed with another image's of the batch, p 0.5, weight ~ Beta(0.1, 0.1))",
                   student_zoom="`student_sog` with zoom both ways while training (`zoom_aug`: 0.7x to 1.6x, against 1x to 1.15x)",
                   student_short="`student_sog` with 1 + 8 epochs (against 1 + 20): less time to learn what only the training sources share",
                   student_swa="`student_sog` with its weights averaged after every batch of the last 10 of its 20 unfrozen epochs (`WeightAverage`: SWA, dense as in SWAD)",
                   student_label="`student_sog` with one label definition: HAM10000's akiec (actinic keratosis or Bowen's disease, malignant by HAM10000's "
                                 "labels; PAD-UFES-20 calls actinic keratosis benign) out of training. Without HAM10000 it is `student_sog`'s model",
                   student_body="`student_sog` with the backbone's learning rate a tenth of the head's in the unfrozen phase (`body_rate`; fastai's `fine_tune`: a hundredth)",
                   peer="`peer_learner` (`vision_learner`'s model)")
SAME_WITHOUT_HAM = dict(student_label='student_sog')                    # families whose model without HAM10000 is another family's (HAM10000 is all they change)
PAIRS = (('student', 'peer'), ('student_sog', 'student'), ('student_sog', 'peer'), ('student_mix', 'student_sog'), ('student_zoom', 'student_sog'), ('student_short', 'student_sog'), ('student_swa', 'student_sog'), ('student_label', 'student_sog'), ('student_body', 'student_sog'), ('student_body', 'peer'))   # paired differences, where both were run
SOURCES = dict(pad_ufes20='PAD-UFES-20 photos', isic2024_tiles='ISIC 2024 tiles', ham10000='HAM10000 holdout (dermoscopy)')
SOURCES_I = {k: i for i, k in enumerate(SOURCES)}                                   # a source's index in SOURCES
TRAINED = dict(pad_ufes20='photos', isic2024_tiles='tiles', ham10000='HAM10000 pool')

def loso_table(seed=0):
    """The photos, the tiles and all of HAM10000 in one table; `holdout`: HAM10000's fold 0 (the images scored when HAM10000 is left out);
    `ambiguous`: HAM10000's akiec (actinic keratosis or Bowen's disease), malignant by HAM10000's labels, where PAD-UFES-20 calls actinic
    keratosis benign and Bowen's disease (with SCC) malignant"""
    pad, tiles, ham = pad_ufes20(seed=seed), read_lesions(find_shared('isic2024_tiles'), progress=False), ham10000(seed=0)
    t = combine_sources([pad, tiles, ham])
    t.df['holdout'] = np.concatenate([np.zeros(len(pad.df) + len(tiles.df), bool), (ham.df.fold == 0).to_numpy()])
    amb = [k for k, v in ham.spec.labels.items() if v is None]                  # the diagnoses its spec calls ambiguous (`apply_labels`): akiec
    t.df['ambiguous'] = np.concatenate([np.zeros(len(pad.df) + len(tiles.df), bool), ham.df[ham.spec.dx_col].isin(amb).to_numpy()])
    return t

def loso_file(a, family, left) -> Path: "Where the `family` model without source `left` keeps its logits"; return Path(a.work)/f'loso_{family}_without_{left}_s{a.seed}.npz'

def loso_logits(a, t, family, left):
    "The `family` model (`FAMILIES`) trained on every image of the sources but `left`, its logits on `left` (cached)"
    f, rec = loso_file(a, family, left), FAMILIES[family]
    m = recipe_model(rec)
    if have_logits(f): return dict(load_logits(f), scorer="one")
    if left == 'ham10000' and family in SAME_WITHOUT_HAM:   # the same training: that family's model
        return dict(loso_logits(a, t, SAME_WITHOUT_HAM[family], left), scorer='same')
    folds = fold_files(a, rec)
    if left == 'ham10000' and all(map(have_logits, folds)):   # trained on the photos and the tiles already: the 5 fold models' mean logit
        ids = t.df.image_id[(t.df.source == 'ham10000') & t.df.holdout].to_numpy().astype(str)
        zs = [load_logits(x) for x in folds]
        return dict(ids=ids, logits=np.mean([z['ham'] for z in zs], axis=0), seconds=sum(float(z['seconds']) for z in zs) / 5, scorer='folds')
    t0 = time.time()
    src, hold = t.df.source.to_numpy(), t.df.holdout.to_numpy()
    scored = (src == left) & (hold if left == 'ham10000' else True)
    out_of_training = t.df.ambiguous.to_numpy() & (rec in ONE_LABEL)    # one label definition: HAM10000's akiec out
    d = t.subset(((src != left) & ~hold & ~out_of_training) | scored)
    w = {k: v for k, v in (('isic2024_tiles', a.tiles_weight), ('ham10000', a.ham_weight)) if k != left}
    learn, logits = train_model(d, (d.df.source == left).to_numpy(), m['role'], a.arch, size=a.size, bs=a.bs,
                                freeze_epochs=a.freeze_epochs, lr=a.lr, pos_weight=a.pos_weight, alpha=0., degrade_p=0.,
                                seed=a.seed, cache=Path(a.work)/'cache', path=Path(a.work)/'train', source_weights=w,
                                valid_every=0, checkpoint=f'ck_loso_{family}_{left}_s{a.seed}', constancy=m['constancy'], **recipe_kwargs(rec, a))
    save_bundle(learn, Path(a.work)/'models'/f.stem)
    out = dict(ids=d.df.image_id[d.df.source == left].to_numpy().astype(str), logits=logits, seconds=time.time() - t0)
    save_logits(f, out)
    out['scorer'] = 'one'
    print(f"{family} without {left}: {out['seconds']:.0f} s", flush=True)
    return out

def mean_over(metric, col:int, scol:int, n:int):
    "A bootstrap statistic: the mean over sources 0..n-1 (source index in column `scol` of the score matrix) of `metric` on column `col`"
    return lambda yt, M: float(np.mean([metric(yt[M[:, scol] == i], M[M[:, scol] == i, col]) for i in range(n)]))

def ham_scorer(a, res) -> str:
    "How each family's model without HAM10000 was had: one trained on all the photos and tiles, or the 5 fold models of its photos + tiles recipe"
    how = lambda f: {'folds': f"by the mean logit of the 5 fold models of `{FAMILIES[f]}`, each trained on four fifths of the photos and the tiles",
                     'same': f"by `{SAME_WITHOUT_HAM.get(f)}`'s model (the same training)"}.get(res[(f, 'ham10000')]['scorer'], "by one model trained on all the photos and tiles")
    return '; '.join(f"`{f}` {how(f)}" for f in a.families)

def one_label(a, t, ids:dict) -> dict:
    "The ids scored per source: with `--ham-scoring one_label`, HAM10000's holdout without its akiec (`loso_table`'s `ambiguous`)"
    if a.ham_scoring == 'all': return ids
    h = np.asarray(ids['ham10000'])
    return {**ids, 'ham10000': h[~np.isin(h, t.df.image_id[t.df.ambiguous].to_numpy())]}

HAM_SCORING = dict(all="HAM10000's labels (akiec malignant)", one_label="akiec not scored (one label definition: PAD-UFES-20 calls actinic keratosis benign)")

def loso_summary(a, t, res):
    "Each source left out, the mean over them, the paired differences between families, and the photos-only student on the sources it never saw"
    y, g = t.df.set_index('image_id').target, t.df.set_index('image_id').group
    ids = one_label(a, t, {s: res[(a.families[0], s)]['ids'] for s in SOURCES})
    z = {k: pd.Series(o['logits'], index=o['ids']) for k, o in res.items()}
    fams = [f for f in FAMILIES if all((f, s) in res for s in SOURCES)]
    pairs = [(x, y_) for x, y_ in PAIRS if x in fams and y_ in fams]
    rows, diffs, Y, G, S, Z = [], [], [], [], [], {f: [] for f in fams}
    for i, s in enumerate(SOURCES):
        yy, gg = y.loc[ids[s]].to_numpy(), g.loc[ids[s]].to_numpy()
        Y.append(yy); G.append(gg); S.append(np.full(len(yy), i))
        for fam in fams:
            zz = z[(fam, s)].loc[ids[s]].to_numpy(); Z[fam].append(zz)
            rows.append(dict(left_out=SOURCES[s], model=fam, trained_on=' + '.join(TRAINED[o] for o in SOURCES if o != s),
                             images=len(yy), malignant=int(yy.sum()), AUC=ci(roc_auc, yy, zz, gg, a.n_boot), pAUC=ci(partial_auc, yy, zz, gg, a.n_boot, 4)))
        d = {'left_out': SOURCES[s]}
        for x, y_ in pairs:
            for m, nd, name in ((roc_auc, 3, 'AUC'), (partial_auc, 4, 'pAUC')):
                d[f'{name}, {x} minus {y_}'] = paired_ci(m, yy, Z[x][-1], Z[y_][-1], gg, a.n_boot, nd)
        diffs.append(d)
    Y, G = np.concatenate(Y), np.concatenate(G)
    M = np.column_stack([np.concatenate(Z[f]) for f in fams] + [np.concatenate(S)])   # one column per family, then the source
    mean_of = lambda metric, f: mean_over(metric, fams.index(f), len(fams), len(SOURCES))
    for fam in fams:
        rows.append(dict(left_out='**mean of the three**', model=fam, trained_on='', images=len(Y), malignant=int(Y.sum()),
                         AUC=ci(mean_of(roc_auc, fam), Y, M, G, a.n_boot), pAUC=ci(mean_of(partial_auc, fam), Y, M, G, a.n_boot, 4)))
    d = {'left_out': '**mean of the three**'}
    for x, y_ in pairs:
        for m, nd, name in ((roc_auc, 3, 'AUC'), (partial_auc, 4, 'pAUC')):
            d[f'{name}, {x} minus {y_}'] = ci(lambda yt, M_, m=m, x=x, y_=y_: mean_of(m, x)(yt, M_) - mean_of(m, y_)(yt, M_), Y, M, G, a.n_boot, nd)
    diffs.append(d)
    secs = {k: float(o['seconds']) for k, o in res.items() if o['scorer'] != 'same'}
    head = (f"# Leave one source out\n\n`python benchmarks/sources.py --loso --tiles-weight {a.tiles_weight} "
            f"--ham-weight {a.ham_weight} --seed {a.seed} --families {' '.join(a.families)} --ham-scoring {a.ham_scoring}`, {time.strftime('%Y-%m-%d')}, this machine's 2 CPU cores. For each source, one model "
            f"trained on every image of the other two (the tiles drawn at {a.tiles_weight} and the HAM10000 pool at {a.ham_weight} of their rows "
            f"each epoch) scores every image of the source left out (HAM10000: its holdout fold, " + ham_scorer(a, res) + f"; labels: {HAM_SCORING[a.ham_scoring]}). "
            + '; '.join(f"`{f}`: {FAMILY_TEXT[f]}" for f in a.families) + f"; all {a.arch}, {a.size} px, 1 + {a.epochs} epochs at lr "
            f"{a.lr}, positives {a.pos_weight}x, one view, one seed. Intervals: 95% bootstrap over patients (photos), tiles and lesions (HAM10000), "
            f"{a.n_boot} replicates. Training: " + ', '.join(f'{f} without {s} {v / 60:.0f} min' for (f, s), v in secs.items()) + ".\n")
    body = md_table(pd.DataFrame(rows)) + ("\n\nPaired differences between families, over the same images:\n\n" + md_table(pd.DataFrame(diffs)) if pairs else '')
    studs = [f for f in fams if recipe_model(FAMILIES[f])['role'] == 'student']
    if studs and all(map(have_logits, fold_files(a, 'pad'))):   # the photos-only student, from the 5-fold results
        pz = photos_only(a, t)
        po, ys, gs, ss, zp, zl = [], [], [], [], [], {f: [] for f in studs}
        for i, s in enumerate(('isic2024_tiles', 'ham10000')):
            ii = ids[s]; yy, gg = y.loc[ii].to_numpy(), g.loc[ii].to_numpy()
            p_ = pz.loc[ii].to_numpy()
            ys.append(yy); gs.append(gg); ss.append(np.full(len(yy), i)); zp.append(p_)
            r = dict(source=SOURCES[s], photos_only=ci(roc_auc, yy, p_, gg, a.n_boot))
            for f in studs:
                l_ = z[(f, s)].loc[ii].to_numpy(); zl[f].append(l_)
                r[f'left_out_{f}'] = ci(roc_auc, yy, l_, gg, a.n_boot)
                r['difference' if f == 'student' else f'difference, {f}'] = paired_ci(roc_auc, yy, l_, p_, gg, a.n_boot)
            po.append(r)
        Y2, G2 = np.concatenate(ys), np.concatenate(gs)
        M2 = np.column_stack([np.concatenate(zp)] + [np.concatenate(zl[f]) for f in studs] + [np.concatenate(ss)])   # photos-only, each family, the source
        m2 = lambda col: mean_over(roc_auc, col, len(studs) + 1, 2)
        r = dict(source='**mean of the two**', photos_only=ci(m2(0), Y2, M2, G2, a.n_boot))
        for j, f in enumerate(studs, 1):
            r[f'left_out_{f}'] = ci(m2(j), Y2, M2, G2, a.n_boot)
            r['difference' if f == 'student' else f'difference, {f}'] = ci(lambda yt, M_, j=j: m2(j)(yt, M_) - m2(0)(yt, M_), Y2, M2, G2, a.n_boot)
        po.append(r)
        body += ("\n\nThe photos-only student (recipe `pad` of this script: 5 fold models, each trained on four fifths of the photos; HAM10000 by "
                 "their mean logit) against the students trained on the two other sources, on the two sources the photos-only student never saw (AUC; "
                 "'difference': the left-out student minus the photos-only one):\n\n" + md_table(pd.DataFrame(po)))
    Path(a.loso_out).write_text(head + "\n" + body + "\n")
    print(Path(a.loso_out).read_text())

def have_loso(a, family, left) -> bool:
    "Whether the `family` model without `left` (seed `a.seed`) has its logits already: its own file, or for HAM10000 its recipe's 5 fold models"
    return have_logits(loso_file(a, family, left)) or (left == 'ham10000' and all(map(have_logits, fold_files(a, FAMILIES[family]))))

def photos_only(a, t):
    "The photos-only student of seed `a.seed` (recipe `pad`, 5 fold models): its out-of-fold logits on the photos and the tiles, and its mean logit on HAM10000's holdout"
    folds = [load_logits(x) for x in fold_files(a, 'pad')]
    oof = pd.concat([pd.Series(o['logits'], index=o['ids']) for o in folds])
    ham_ids = t.df.image_id[(t.df.source == 'ham10000') & t.df.holdout].to_numpy().astype(str)
    return pd.concat([oof, pd.Series(np.mean([o['ham'] for o in folds], axis=0), index=ham_ids)])

def seeds_summary(a, seeds, family='student_sog'):
    "The leave-one-source-out criterion over several seeds: `family` trained without each source against the photos-only student, on the two sources the latter never saw"
    t = loso_table(0)                                 # labels and groups (the seed only moves the photos' folds)
    y, g = t.df.set_index('image_id').target, t.df.set_index('image_id').group
    miss = [(s, f) for s in seeds for f in [*SOURCES, 'photos-only']
            if not (all(map(have_logits, fold_files(argparse.Namespace(**{**vars(a), 'seed': s}), 'pad'))) if f == 'photos-only'
                    else have_loso(argparse.Namespace(**{**vars(a), 'seed': s}), family, f))]
    if miss: raise FileNotFoundError(f"no results yet for (seed, model) {miss}: run `--recipes pad --seed S` and `--loso --families {family} --seed S` first")
    unseen = ('isic2024_tiles', 'ham10000')
    ids = one_label(a, t, {s_: t.df.image_id[(t.df.source == s_) & (t.df.holdout if s_ == 'ham10000' else True)].to_numpy().astype(str) for s_ in SOURCES})
    pad_ids = ids['pad_ufes20']
    cols, src3 = [], np.concatenate([np.full(len(ids[s_]), i) for i, s_ in enumerate(SOURCES)])
    for s in seeds:
        b = argparse.Namespace(**{**vars(a), 'seed': s})
        res = {s_: loso_logits(b, t, family, s_) for s_ in SOURCES}
        lo = pd.concat([pd.Series(r['logits'], index=r['ids']) for r in res.values()])
        cols += [photos_only(b, t), lo]
    allids = np.concatenate([ids[s_] for s_ in SOURCES])
    Y, G = y.loc[allids].to_numpy(), g.loc[allids].to_numpy()
    M = np.column_stack([c.reindex(allids).to_numpy() for c in cols] + [src3])   # per seed: photos-only (NaN on nothing), the family left out; then the source
    n, sc = len(seeds), 2 * len(seeds)
    def on(metric, col, which):                       # `metric` of column `col`, mean over the sources `which` (indices into SOURCES)
        return lambda yt, M_: float(np.mean([metric(yt[M_[:, sc] == i], M_[M_[:, sc] == i, col]) for i in which]))
    two, three, photos = [SOURCES_I[x] for x in unseen], [0, 1, 2], [SOURCES_I['pad_ufes20']]
    fmt = lambda f, nd=3: ci(f, Y, M, G, a.n_boot, nd)
    rows = []
    for j, s in enumerate(seeds):
        po, lo = 2 * j, 2 * j + 1
        rows.append({'seed': str(s), "photos-only, photos' folds": fmt(on(roc_auc, po, photos)),
                     'photos-only, mean of the two unseen': fmt(on(roc_auc, po, two)),
                     f'{family} left out, mean of the two': fmt(on(roc_auc, lo, two)),
                     'difference': fmt(lambda yt, M_, po=po, lo=lo: on(roc_auc, lo, two)(yt, M_) - on(roc_auc, po, two)(yt, M_)),
                     f'{family} left out, mean of the three': fmt(on(roc_auc, lo, three)),
                     f'{family} left out, pAUC mean of the three': fmt(on(partial_auc, lo, three), 4)})
    avg = lambda f_of_j: (lambda yt, M_: float(np.mean([f_of_j(j)(yt, M_) for j in range(n)])))
    rows.append({'seed': f'**mean of {n}**', "photos-only, photos' folds": fmt(avg(lambda j: on(roc_auc, 2 * j, photos))),
                 'photos-only, mean of the two unseen': fmt(avg(lambda j: on(roc_auc, 2 * j, two))),
                 f'{family} left out, mean of the two': fmt(avg(lambda j: on(roc_auc, 2 * j + 1, two))),
                 'difference': fmt(avg(lambda j: (lambda yt, M_: on(roc_auc, 2 * j + 1, two)(yt, M_) - on(roc_auc, 2 * j, two)(yt, M_)))),
                 f'{family} left out, mean of the three': fmt(avg(lambda j: on(roc_auc, 2 * j + 1, three))),
                 f'{family} left out, pAUC mean of the three': fmt(avg(lambda j: on(partial_auc, 2 * j + 1, three)), 4)})
    per = []                                          # each unseen source, mean over the seeds
    for x in unseen:
        i = [SOURCES_I[x]]
        per.append({'source': SOURCES[x], 'photos-only': fmt(avg(lambda j: on(roc_auc, 2 * j, i))),
                    f'{family} left out': fmt(avg(lambda j: on(roc_auc, 2 * j + 1, i))),
                    'difference': fmt(avg(lambda j: (lambda yt, M_: on(roc_auc, 2 * j + 1, i)(yt, M_) - on(roc_auc, 2 * j, i)(yt, M_))))})
    fam_opt = f"--seeds-family {family} " if family != 'student_sog' else ''
    head = (f"# The leave-one-source-out criterion over {n} seed{'s' if n > 1 else ''}: {family}\n\n`python benchmarks/sources.py --seeds-summary {' '.join(map(str, seeds))} {fam_opt}--ham-scoring {a.ham_scoring}`, "
            f"{time.strftime('%Y-%m-%d')}, this machine's 2 CPU cores, from the results of `--recipes pad --seed S` (the photos-only student: "
            f"5 fold models, each trained on four fifths of the photos) and `--loso --families {family} --seed S` (one model per source left "
            f"out, trained on the two others) for each seed S. A seed sets the photos' and the tiles' folds, the initial order and the draws. "
            f"'mean of the two': the tiles and the HAM10000 holdout, the sources the photos-only student never saw; 'difference': the "
            f"{family} model that never saw the source minus the photos-only student, AUC. The seeds' row is the mean over seeds of each "
            f"seed's number. Intervals: 95% bootstrap over patients (photos), tiles and lesions (HAM10000), the same resampled images for every "
            f"seed and model, {a.n_boot} replicates: they hold the images' sampling, and the seeds' mean holds the training's. HAM10000's "
            f"holdout: {HAM_SCORING[a.ham_scoring]}.\n\n")
    out = head + md_table(pd.DataFrame(rows)) + "\n\nEach source the photos-only student never saw, the mean over the seeds:\n\n" + md_table(pd.DataFrame(per)) + "\n"
    Path(a.seeds_out).write_text(out); print(out)

def md_tables(text:str) -> list:
    "The markdown tables of `text` as DataFrames of strings, in order"
    out, rows = [], []
    for line in text.splitlines() + ['']:
        if line.startswith('|'): rows.append([c.strip() for c in line.strip().strip('|').split(' | ')])
        elif rows: out.append(pd.DataFrame([r for r in rows[2:]], columns=rows[0])); rows = []
    return out

def seed_means(a, specs:list):
    """Each family's AUC on each source left out, seed by seed, from its `--loso` summaries (`FAMILY:FILE,FILE,...`, files
    in benchmarks/results, one per seed in seed order), and each family's mean over the seeds; the first family minus the
    second on those means. Point estimates only: for families whose logits were not all kept, no paired interval exists"""
    res, fams, n = Path('benchmarks/results'), [], None
    cols = {}
    for sp in specs:
        fam, files = sp.split(':', 1)
        files = files.split(',')
        if n is not None and len(files) != n: raise ValueError(f"--seed-means {sp}: {len(files)} files, where the first family has {n}: one per seed each")
        n = len(files); fams.append(fam)
        for i, f in enumerate(files):
            if not (res/f).exists(): raise FileNotFoundError(f"--seed-means {sp}: no results file {res/f}")
            tabs = md_tables((res/f).read_text())
            if not tabs or 'model' not in tabs[0]: raise ValueError(f"--seed-means {sp}: {f} is not a --loso summary (its first table has no 'model' column)")
            t = tabs[0][tabs[0].model == fam]                      # a --loso summary's first table: one row per source and family
            if t.empty: raise ValueError(f"--seed-means {sp}: {f} has no rows of family {fam!r}")
            cols[(fam, i)] = {r.left_out.strip('*'): float(r.AUC.split()[0]) for r in t.itertuples()}
    rows = []
    for src in list(SOURCES.values()) + ['mean of the three']:
        r, m = {'source left out': src}, {}
        for fam in fams:
            v = [cols[(fam, i)][src] for i in range(n)]
            m[fam] = np.mean(v)
            r.update({f'{fam}, seed {i}': f'{x:.3f}' for i, x in enumerate(v)}); r[f'{fam}, mean of {n}'] = f'{m[fam]:.3f}'
        if len(fams) > 1: r[f'{fams[0]} minus {fams[1]}, mean of {n}'] = f'{m[fams[0]] - m[fams[1]]:+.3f}'
        rows.append(r)
    out = (f"# Each source left out, seed by seed\n\n`python benchmarks/sources.py --seed-means {' '.join(specs)}`: the AUC of each "
           f"family's model on every image of the source left out, from those `--loso` summaries (one file per seed, seeds 0 to {n - 1}), and "
           f"their mean over the seeds. Point estimates only: the summaries hold each number's interval; the logits of some of these "
           f"models were not kept, so the families are not paired here.\n\n" + md_table(pd.DataFrame(rows)) + "\n")
    Path(a.seed_means_out).write_text(out); print(out)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--recipes', nargs='+', default=['pad', 'pad_tiles'], choices=list(RECIPES))
    ap.add_argument('--folds', nargs='+', type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument('--tiles-weight', type=float, default=0.2, help="tiles drawn per epoch, as a fraction of their training rows")
    ap.add_argument('--work', default='runs/sources', help="folder for the caches, models and each fold's logits")
    ap.add_argument('--out', default='benchmarks/results/sources.md')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--robustness', action='store_true', help="also score each fold's photos under simulated capture degradations")
    ap.add_argument('--loso', action='store_true', help="leave each whole source out (the student and the peer) instead of the folds")
    ap.add_argument('--ham-weight', type=float, default=0.1, help="--loso: HAM10000 pool images drawn per epoch, as a fraction of its rows")
    ap.add_argument('--loso-out', default='benchmarks/results/sources_loso.md')
    ap.add_argument('--families', nargs='+', default=['student', 'peer'], choices=list(FAMILIES), help="--loso: the models to train and compare")
    ap.add_argument('--seeds-summary', nargs='+', type=int, help="the LOSO criterion over these seeds (their `--recipes pad` and `--loso --families FAMILY` results must exist; FAMILY: --seeds-family)")
    ap.add_argument('--seeds-out', default='benchmarks/results/sources_seeds.md')
    ap.add_argument('--seeds-family', default='student_sog', choices=list(FAMILIES), help="--seeds-summary: the family left out that faces the photos-only student")
    ap.add_argument('--ham-scoring', default='all', choices=list(HAM_SCORING), help="--loso, --seeds-summary: score HAM10000's holdout with its own labels (all) or without akiec (one_label)")
    ap.add_argument('--seed-means', nargs='+', help="FAMILY:FILE,FILE,... (one --loso summary per seed): each source left out, seed by seed, and the mean over seeds")
    ap.add_argument('--seed-means-out', default='benchmarks/results/sources_seed_means.md')
    ap.add_argument('--one-model', action='store_true', help="--loso: train at most one model, then stop (run it again for the next one)")
    train_args(ap, arch='tf_efficientnet_lite0', size=128, bs=32, epochs=20, freeze_epochs=1, lr=8e-3, pos_weight=3., seed=0, n_boot=1000)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if plain_output(): fpb.NO_BAR, fpb.ConsoleProgressBar.fill = True, ''   # a log file: epoch lines only
    Path(a.work).mkdir(parents=True, exist_ok=True)
    if a.seeds_summary: return seeds_summary(a, a.seeds_summary, a.seeds_family)
    if a.seed_means: return seed_means(a, a.seed_means)
    if a.loso:
        t = loso_table(a.seed)
        res = {}
        for s in SOURCES:                        # source by source, every family: a partial run compares like with like
            for f in a.families:
                new = not have_logits(loso_file(a, f, s))
                res[(f, s)] = loso_logits(a, t, f, s)
                if new and a.one_model and s != 'ham10000': return   # a fresh process for each model (rerun for the next one and the summary)
        return loso_summary(a, t, res)
    both, ham = sources(a.seed)
    ham_images = np.asarray(ImageCache.build(ham.df.image_ref, a.size, Path(a.work)/'cache', ids=ham.ids).array)
    res = {r: [] for r in a.recipes}
    for k in a.folds:                            # fold by fold, every recipe: a partial run compares like with like
        for r in a.recipes: res[r].append(fold_logits(a, both, ham, ham_images, r, k))
    R = pd.concat([fold_robustness(a, both, r, k) for k in a.folds for r in a.recipes]) if a.robustness else None
    if len(a.folds) == 5: summary(a, both, ham, res, R)

if __name__ == '__main__': main()
