"""How much of the teacher's lead can an image-only student reach? The FiLM teacher's logit is a function of the image
and the metadata (age, sex, site); an image-only model can at best use what the image says about the metadata. This
script measures that on the HAM10000 holdout with the teacher of the notebook recipe (trained on the whole pool by
`online_distill_cpu.py --valid-fold 0 --final`), without training anything:

1. the teacher's pooled image features (before FiLM: a function of the image alone) for every pool and holdout image;
2. predictors of the metadata from the image, fitted on the pool only: probes on those features (ridge for the age,
   logistic regressions for sex and site, regularisation by lesion-grouped CV) and, with --cnn-epochs, a Lite0
   network fine-tuned to predict all three; scored on the holdout's metadata: how much metadata the image reveals;
3. the teacher made image-only (`FusionModel.fuse` on the features computed once), scored on the holdout (pAUC, AUC), beside the saved students:
   - `blind`: its logit averaged over the metadata of K random pool rows (what the image alone gives it),
   - `drawn from`: averaged over K draws from each predictor's metadata distribution for that image (sex and site from
     the predicted probabilities, age from the predicted value plus its out-of-fold residual spread): an estimate of
     E[teacher | image], the best an image-only student could learn from this teacher (the highest is the reference),
   - `true`: the teacher with the image's own metadata (its usual logit; checked against the saved one),
   - one field true, the others drawn from the image: which field carries the teacher's lead.
   Every model's paired pAUC difference to the image-predicted teacher (grouped bootstrap over the holdout's lesions).
With --imagenet the same probes are also fitted on the ImageNet weights' features (the backbone before any training),
since the fine-tuned backbone may have discarded what it did not need. The features are kept in --work. Nothing is
chosen on the holdout here: no model is trained or selected. Not a test; prints two markdown tables (the predictors,
the models) and writes every number to --out.json.

Usage: python benchmarks/metadata_ceiling.py --data ../shared/data/ham10000 [--work runs/online_cpu] [--draws 32] [--imagenet]"""
import argparse, json, time
from pathlib import Path
import pickle
import numpy as np, pandas as pd, torch, torch.nn as nn, torch.nn.functional as F
from scipy.special import expit, logit
from fastai.learner import Learner
from fastai.callback.core import Callback
from sklearn.linear_model import LogisticRegressionCV, Ridge, RidgeCV
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.preprocessing import StandardScaler
from fastai.torch_core import set_seed
from lesion_fastai.data import read_lesions
from lesion_fastai.splits import add_folds
from lesion_fastai.cache import ImageCache
from lesion_fastai.datablock import lesion_dataloaders, lesion_test_dl
from lesion_fastai.models import teacher_learner, meta_processor, lesion_splitter
from lesion_fastai.backbones import create_backbone
from lesion_fastai.metrics import partial_auc, roc_auc, paired_diff_ci
from common import ham10000

@torch.no_grad()
def features(net, dl):
    "`net`'s outputs (a backbone's pooled features), the metadata codes and normalised continuous values of every row of `dl`, in order"
    F, C, X = [], [], []
    for img, cat, cont, *_ in dl:
        F.append(net(img.as_subclass(torch.Tensor)).float()); C.append(cat.as_subclass(torch.Tensor)); X.append(cont.as_subclass(torch.Tensor))
    return torch.cat(F).numpy(), torch.cat(C).numpy(), torch.cat(X).numpy()

@torch.no_grad()
def head_logits(model, f, cat, cont):
    "The teacher's logits from precomputed image features `f` and metadata `cat`, `cont` (row by row; `FusionModel.fuse`)"
    return model.fuse(*map(torch.as_tensor, (f, cat, cont))).numpy()

def probes(Ftr, Fte, Ctr, Xtr, proc, gtr, seed=0):
    "Metadata-from-image probes fitted on the pool's features (regularisation chosen by lesion-grouped 5-fold CV): their distributions for the holdout"
    sc = StandardScaler().fit(Ftr); Ztr, Zte = sc.transform(Ftr), sc.transform(Fte)
    known = Ctr[:, -1] == 1                                  # age_na: 1 = age known
    Zk, ak = Ztr[known], Xtr[known, 0]
    cvk = list(GroupKFold(5).split(Zk, groups=gtr[known]))
    age = RidgeCV(alphas=np.logspace(0, 5, 11), cv=cvk).fit(Zk, ak)
    oof = cross_val_predict(Ridge(alpha=age.alpha_), Zk, ak, cv=cvk)
    fitted = {'age': (age.predict(Zte), float(np.std(oof - ak)))}   # out-of-fold residual spread on the pool (normalised units)
    cv = list(GroupKFold(5).split(Ztr, groups=gtr))
    for j, col in enumerate(proc.cat_cols):
        clf = LogisticRegressionCV(Cs=np.logspace(-5, -1, 5), cv=cv, scoring='neg_log_loss', max_iter=1000, random_state=seed).fit(Ztr, Ctr[:, j])
        fitted[col] = (clf.classes_, clf.predict_proba(Zte))
    return fitted

class MetaFromImage(nn.Module):
    "An image-only network predicting the metadata: one output for the normalised age, then logits for each categorical column"
    def __init__(self, backbone, n_cat:list):
        super().__init__(); self.backbone, self.n_cat = backbone, list(n_cat)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(backbone.num_features, 1 + sum(n_cat)))
    def forward(self, img): return self.head(self.backbone(img.as_subclass(torch.Tensor)))

class MetaTargets(Callback):
    "The batch's metadata inputs become its targets; the image is the only input"
    def before_batch(self):
        img, cat, cont = self.xb[:3]
        self.learn.xb, self.learn.yb = (img,), (cat.as_subclass(torch.Tensor), cont.as_subclass(torch.Tensor))

def meta_loss(out, cat, cont, n_cat):
    "MSE on the normalised age where it is known (the last categorical code is the age-missing flag, 1 = known) + CE per column"
    known = cat[:, -1] == 1
    loss = F.mse_loss(out[known, 0].float(), cont[known, 0].float()) if known.any() else out.sum() * 0
    i = 1
    for j, n in enumerate(n_cat): loss = loss + F.cross_entropy(out[:, i:i + n].float(), cat[:, j]); i += n
    return loss

def cnn_probe(data, cache, proc, work, size, epochs, lr, seed=0):
    """Fine-tune Lite0 (ImageNet weights) to predict the metadata from the image on pool folds 2-4; the age spread of
    its draws is measured on pool fold 1. Its distributions for the holdout, in the teacher's codes and normalisation."""
    pool = data.subset((data.df.fold != 0).to_numpy())
    set_seed(seed); d = lesion_dataloaders(pool, 1, size=size, bs=64, cache=cache, meta=True); d.train.rng.seed(seed)
    p2 = meta_processor(d); n_cat = [len(p2.vocab[c]) for c in p2.cat_cols]
    learn = Learner(d, MetaFromImage(create_backbone('tf_efficientnet_lite0', True), n_cat), loss_func=lambda o, c, x: meta_loss(o, c, x, n_cat),
                    splitter=lesion_splitter, cbs=[MetaTargets()], path=work)
    name = f'meta_from_image_{size}px_e{epochs}_s{seed}'
    if (work/'models'/f'{name}.pth').exists(): learn.load(name)
    else: learn.fine_tune(epochs, lr); learn.save(name)
    m = learn.model.eval()
    Ov, Cv, Xv = features(m, d.valid)                     # pool fold 1, never trained on: the age spread
    known = Cv[:, -1] == 1
    resid = float(np.std((Ov[known, 0] - Xv[known, 0]) * p2.std['age'])) / proc.std['age']
    O = features(m, lesion_test_dl(d, data.df[(data.df.fold == 0).to_numpy()]))[0]
    age = (O[:, 0] * p2.std['age'] + p2.mean['age'] - proc.mean['age']) / proc.std['age']    # the teacher's normalisation
    fitted, i = {'age': (age, resid)}, 1
    for c, n in zip(p2.cat_cols, n_cat):
        P2 = torch.softmax(torch.as_tensor(O[:, i:i + n]), 1).numpy(); i += n
        P = np.zeros((len(O), len(proc.vocab[c])))
        for k, v in enumerate(p2.vocab[c]):              # the network's codes -> the teacher's codes, by name
            if v in proc.vocab[c]: P[:, proc.vocab[c].index(v)] += P2[:, k]
        fitted[c] = (np.arange(P.shape[1]), P / P.sum(1, keepdims=True))
    return fitted

def score_fitted(fitted, Cte, Xte, Ctr, proc):
    "How well the fitted metadata distributions describe the holdout's metadata"
    known = Cte[:, -1] == 1; sd = proc.std['age']
    age = fitted['age'][0]; err = (age - Xte[:, 0])[known] * sd
    out = dict(age=dict(mae_years=float(np.abs(err).mean()), r2=float(1 - (err**2).mean() / ((Xte[known, 0] * sd - (Xte[known, 0] * sd).mean())**2).mean())))
    for j, c in enumerate(proc.cat_cols):
        classes, P = fitted[c]; Pf = np.zeros((len(Cte), max(P.shape[1], Cte[:, j].max() + 1))); Pf[:, classes] = P
        prior = np.bincount(Ctr[:, j], minlength=Pf.shape[1]) / len(Ctr)
        out[c] = dict(accuracy=float((Pf.argmax(1) == Cte[:, j]).mean()), majority=float((Cte[:, j] == prior.argmax()).mean()),
                      log_loss=float(-np.log(np.clip(Pf[np.arange(len(Cte)), Cte[:, j]], 1e-9, 1)).mean()),
                      prior_log_loss=float(-np.log(np.clip(prior[Cte[:, j]], 1e-9, 1)).mean()))
    return out

def draws_predicted(fitted, Cte, proc, k, rng):
    "K metadata draws per holdout image from the probes: (n*k, n_cat) codes and (n*k, 1) normalised ages"
    n = len(Cte); cat = np.repeat(Cte, k, 0).copy(); cat[:, -1] = 1   # age known
    for j, col in enumerate(proc.cat_cols):
        classes, P = fitted[col]
        u = rng.random((n, k, 1)); cum = P.cumsum(1)[:, None, :]
        cat[:, j] = classes[(u > cum).sum(-1).clip(0, len(classes) - 1)].ravel()
    age, s = fitted['age']
    cont = (age[:, None] + s * rng.standard_normal((n, k))).reshape(-1, 1).astype(np.float32)
    return cat, cont

def tables(r) -> str:
    "The predictors' and the models' markdown tables from the results `r`"
    L = ["| predictor (fitted on the pool, scored on the holdout) | age: MAE years (R²) | sex: accuracy (majority) | sex: log loss (prior) | site: accuracy (majority) | site: log loss (prior) |", "|---|---|---|---|---|---|"]
    for n, p in r['probes'].items():
        a, s, l = p['age'], p['sex'], p['localization']
        L.append(f"| {n} | {a['mae_years']:.1f} ({a['r2']:.2f}) | {s['accuracy']:.3f} ({s['majority']:.3f}) | {s['log_loss']:.3f} ({s['prior_log_loss']:.3f}) | "
                 f"{l['accuracy']:.3f} ({l['majority']:.3f}) | {l['log_loss']:.2f} ({l['prior_log_loss']:.2f}) |")
    L += ["", "| model on the holdout | pAUC | AUC | pAUC minus the reference [95% CI] |", "|---|---|---|---|"]
    for n, m in r['models'].items():
        d = r['minus_reference'].get(n)
        L.append(f"| {n}{' (**reference**)' if n == r['reference'] else ''} | {m['pauc']:.4f} | {m['auc']:.3f} | {'' if d is None else f'{d[0]:+.4f} [{d[1]:+.4f}, {d[2]:+.4f}]'} |")
    return '\n'.join(L)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True); ap.add_argument('--work', default='runs/online_cpu')
    ap.add_argument('--teacher', default='teacher_f0_s0_128px_e3_lr0.004_pw3.0')
    ap.add_argument('--size', type=int, default=128); ap.add_argument('--draws', type=int, default=32)
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--cache', default='.cache')
    ap.add_argument('--out', default='benchmarks/results/metadata_ceiling')
    ap.add_argument('--cnn-epochs', type=int, default=3, help="also fine-tune Lite0 to predict the metadata from the image (1 frozen + this many epochs; 0: the linear probes only)")
    ap.add_argument('--lr', type=float, default=4e-3, help="the metadata network's peak learning rate")
    ap.add_argument('--imagenet', action='store_true', help="also fit the probes on the ImageNet weights' features (another forward pass and fit)")
    a = ap.parse_args(); torch.set_num_threads(a.threads); t0 = time.time()
    work = Path(a.work)
    if not (work/'models'/f'{a.teacher}.pth').exists():
        raise SystemExit(f"{work}/models/{a.teacher}.pth: no such teacher (train it with online_distill_cpu.py --valid-fold 0 --final)")
    data = ham10000(a.data)
    cache = ImageCache.build(data.df.image_ref, a.size, a.cache, ids=data.ids, progress=False)
    set_seed(0); dls = lesion_dataloaders(data, 0, size=a.size, bs=128, cache=cache, meta=True)
    teacher = teacher_learner(dls, 'tf_efficientnet_lite0', fusion='film', path=work); teacher.load(a.teacher)
    M, proc = teacher.model.eval(), meta_processor(dls)
    is_valid = (data.df.fold == 0).to_numpy()
    pool_dl = lesion_test_dl(dls, data.df[~is_valid])
    y, g = data.df.malignant[is_valid].to_numpy(), data.df.lesion_id[is_valid].to_numpy()
    gtr = data.df.lesion_id[~is_valid].to_numpy()
    res = dict(images=dict(pool=int((~is_valid).sum()), holdout=int(is_valid.sum()), holdout_malignant=int(y.sum())))
    feats = {}
    for name, bb in [('teacher backbone (fine-tuned)', M.backbone)] + ([('ImageNet backbone', create_backbone('tf_efficientnet_lite0', True).eval())] if a.imagenet else []):
        f = work/f"features_{a.teacher if bb is M.backbone else f'imagenet_{a.size}px'}.npz"   # a forward pass over 8.5k images: kept
        if not f.exists(): np.savez(f, *features(bb, pool_dl), *features(bb, dls.valid))
        Ftr, Ctr, Xtr, Fte, Cte, Xte = arrays = np.load(f).values()
        if bb is M.backbone: feat_teacher = list(arrays)
        pf = f.with_suffix('.probes.pkl')                   # the grouped-CV fits take minutes: kept beside the features
        if not pf.exists(): pf.write_bytes(pickle.dumps(probes(Ftr, Fte, Ctr, Xtr, proc, gtr)))
        fitted = feats[name] = pickle.loads(pf.read_bytes())
        res.setdefault('probes', {})[name] = score_fitted(fitted, Cte, Xte, Ctr, proc)
        print(name, json.dumps(res['probes'][name]), f"{time.time() - t0:.0f} s", flush=True)
    Ftr, Ctr, Xtr, Fte, Cte, Xte = feat_teacher
    models = {}
    rng, n, k = np.random.default_rng(0), len(Fte), a.draws
    z_true = head_logits(M, Fte, Cte, Xte)
    if a.cnn_epochs:
        name = 'Lite0 fine-tuned to predict the metadata'
        fitted = feats[name] = cnn_probe(data, cache, proc, work, a.size, a.cnn_epochs, a.lr)
        res['probes'][name] = score_fitted(fitted, Cte, Xte, Ctr, proc); print(name, json.dumps(res['probes'][name]), flush=True)
    Fk = np.repeat(Fte, k, 0)                                # each holdout image's features, once per draw
    drawn = lambda cat, cont: head_logits(M, Fk, cat, cont).reshape(n, k)
    # average probabilities, then back to logits: E[p | image] is what a student's sigmoid output can match
    lg = lambda Z: logit(np.clip(expit(Z).mean(1), 1e-7, 1 - 1e-7))
    pick = rng.integers(0, len(Ctr), (n, k)).ravel()
    z_blind = drawn(Ctr[pick], Xtr[pick])
    models.update({'teacher, true metadata': z_true, 'teacher, metadata of random pool rows (blind)': lg(z_blind)})
    for name, fit in feats.items():
        cat, cont = draws_predicted(fit, Cte, proc, k, rng)
        models[f'teacher, metadata drawn from: {name}'] = lg(drawn(cat, cont))
    # the reference: the highest estimate of E[teacher | image] (the image's metadata as the best probe reads it)
    best = max(feats, key=lambda name: partial_auc(y, models[f'teacher, metadata drawn from: {name}']))
    rname = res['reference'] = f'teacher, metadata drawn from: {best}'
    # which field carries the lead: one field true, the others drawn from the image by the best probe
    cat, cont = draws_predicted(feats[best], Cte, proc, k, rng)
    for field in ['age'] + list(proc.cat_cols):
        c2, x2 = cat.copy(), cont.copy()
        if field == 'age': x2[:] = np.repeat(Xte, k, 0); c2[:, -1] = np.repeat(Cte[:, -1], k)
        else: j = proc.cat_cols.index(field); c2[:, j] = np.repeat(Cte[:, j], k)
        models[f'teacher, true {field} only (the rest drawn from the image)'] = lg(drawn(c2, x2))
    L = work/'logits_f0.csv'
    saved = pd.read_csv(L) if L.exists() else None
    if saved is not None:
        if list(saved.image_id.astype(str)) != list(data.df.image_id[is_valid].astype(str)): raise SystemExit(f"{L}: other images or order")
        tcol = [c for c in saved.columns if c.startswith('teacher')][0]
        res['teacher_logit_max_abs_diff'] = float(np.abs(saved[tcol].to_numpy() - z_true).max())
        for c in saved.columns[3:]:
            if c.startswith('student'): models[c] = saved[c].to_numpy()
    res['models'] = {m: dict(pauc=float(partial_auc(y, z)), auc=float(roc_auc(y, z))) for m, z in models.items()}
    res['minus_reference'] = {m: list(paired_diff_ci(partial_auc, y, z, models[rname], g)) for m, z in models.items() if m != rname}
    seeds = {}                                               # the students of several seeds: their mean, paired over the seeds
    for m in models:
        if m.startswith('student'): seeds.setdefault(m.rsplit('_s', 1)[0], []).append(m)
    for m, cols in seeds.items():
        Z = np.stack([models[c] for c in cols], 1)
        res['models'][f'{m}, mean of {len(cols)} seeds'] = dict(pauc=float(np.mean([res['models'][c]['pauc'] for c in cols])),
                                                                 auc=float(np.mean([res['models'][c]['auc'] for c in cols])))
        res['minus_reference'][f'{m}, mean of {len(cols)} seeds'] = list(paired_diff_ci(partial_auc, y, Z, models[rname], g))
    res['seconds'] = round(time.time() - t0)
    print(tables(res))
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix('.json').write_text(json.dumps(res, indent=1) + '\n')

if __name__ == '__main__': main()
