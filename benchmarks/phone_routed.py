"""Benchmark: a dermoscopy student and the shipped phone-photo student behind one router (`route_students`), against
each of them alone, on the phone photos (PAD-UFES-20, 5 patient-grouped folds) and on the HAM10000 holdout. Not a test.

The students are the ones `benchmarks/phone_photos.py` made, read from disk, nothing retrained but the router:
- the phone-photo students: the kept fold models of the shipped recipe (--phone, default `in_distill_clean_e20`,
  seeds --seeds), each trained on four PAD-UFES-20 folds;
- the dermoscopy student: the notebook recipe's image-only student on the HAM10000 pool, akiec out (`ham_noakiec`, 1 + 3
  epochs at 128 px, phone degradations on), trained here once if --work lacks it (about 10 minutes on 2 cores).
For each seed and fold, the router (`fit_router`) is fitted on that fold's training photos (the other four folds) and
--n-derm HAM10000 pool images (one random sample, never the holdout), and the routed pair scores the fold's photos (pooled out of fold, as the
other phone-photo rows) and the HAM10000 holdout (1,697 images, each fold's pair, as the phone students' last column).
Offsets are 0 here (a shift per student; they set a shared threshold, not the ranking within one kind of image).
Also: where the router sends each kind of image, --n-degraded HAM10000 holdout images under each simulated phone
capture included (a dermoscopy image, blurred, compressed or colour-cast, should still go to the dermoscopy student).
Each student's features are computed once per image set and the pair's output assembled from them (checked equal to
its forward), so a fold costs one pass of its phone student over about 5,000 images.

Usage: python benchmarks/phone_routed.py                      # writes benchmarks/results/phone_routed.md
       python benchmarks/phone_routed.py --seeds 0 --threads 1  # one seed
"""
import argparse, json, pickle, time
from pathlib import Path
from types import SimpleNamespace
import numpy as np, pandas as pd, torch
from lesion_fastai.cache import ImageCache, float_batches
from lesion_fastai.export import batch_uint8
from lesion_fastai.models import RoutedStudent
from lesion_fastai.phone import fit_router
from lesion_fastai.degrade import degrade, DEGRADATIONS
from lesion_fastai.metrics import partial_auc, roc_auc, bootstrap_ci, paired_diff_ci, fmt_ci
from common import ham10000, pad_ufes20
import phone_photos as pp

def log(msg): print(f"[phone_routed] {time.strftime('%H:%M:%S')} {msg}", flush=True)

def feats(m, x, bs=64):
    "Pooled backbone features of student `m` on uint8 images `x`"
    with torch.no_grad(): return np.concatenate([m.backbone(torch.from_numpy(b)).numpy() for b in float_batches(x, bs)])

def parts(m, fd, fp):
    "The routed pair's offset logits (N, 2) and router weights (N, 2) from the two students' features (`RoutedStudent.combine`)"
    with torch.no_grad(): return tuple(t.numpy() for t in m.combine([torch.from_numpy(fd), torch.from_numpy(fp)]))

def head(m, f):
    "Student `m`'s logits from its pooled features `f`"
    with torch.no_grad(): return m.head(torch.from_numpy(f)).squeeze(1).numpy()

def degraded(x, severity=3):
    "Images `x` under each simulated phone capture (`lesion_fastai.degrade`) at `severity`: {kind: uint8 images}"
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).float() / 255
    return {k: batch_uint8(degrade(t, k, severity, seed=0)) for k in DEGRADATIONS}

def one_seed(a, s, files, derm, Fd, sets, X, y, fold, yh, n_pool):
    "The five folds of seed `s`: out-of-fold logits of the phone student and of each routed variant, holdout pAUCs, where the routers send each image set"
    zp, zr, hold_p, hold_r, route_rows, acc = np.zeros(len(y)), {}, [], {}, [], []
    for f in range(5):
        t0 = time.time()
        phone = pp.saved_student(torch.load(files[s, f], weights_only=True))
        tr, te = fold != f, fold == f
        Fp = {k: feats(phone, v) for k, v in sets.items()}
        Xr = np.concatenate([np.concatenate([Fd['pool'], Fp['pool']], 1), np.concatenate([Fd['pad'][tr], Fp['pad'][tr]], 1)])
        kr = np.r_[np.zeros(n_pool, int), np.ones(tr.sum(), int)]      # the pool sample and this fold's training photos
        zp[te] = head(phone, Fp['pad'][te])
        hold_p.append(partial_auc(yh, head(phone, Fp['hold'])))
        for C in a.C:
            m = RoutedStudent([derm, phone], ['dermoscopy', 'phone']).eval()
            acc.append(dict(seed=s, fold=f, C=C, **fit_router(m, Xr, kr, C)))
            P = {k: parts(m, Fd[k], Fp[k]) for k in sets}
            for hard in (False, True):
                v = (C, hard); zr.setdefault(v, np.zeros(len(y)))
                m.hard = hard
                with torch.no_grad(): out = {k: m.mix(*map(torch.from_numpy, P[k])).numpy() for k in ('pad', 'hold')}
                with torch.no_grad(): assert np.allclose(m(torch.from_numpy(next(float_batches(X[:16])))).numpy(), out['pad'][:16], atol=1e-4)   # the pieces are its forward
                zr[v][te] = out['pad'][te]; hold_r.setdefault(v, []).append(partial_auc(yh, out['hold']))
            w = {'phone photos, held-out fold': P['pad'][1][te], 'HAM10000 holdout': P['hold'][1],
                 **{f'HAM10000 holdout, {k[4:]}': P[k][1] for k in sets if k.startswith('deg_')}}
            route_rows += [dict(seed=s, fold=f, C=C, images=k, n=len(x), to_dermoscopy=float((x.argmax(1) == 0).mean())) for k, x in w.items()]
        log(f"seed {s} fold {f} ({time.time() - t0:.0f}s): photos AUC phone {roc_auc(y[te], zp[te]):.3f}, routed "
            + ', '.join(f"C {C} {'hard' if h else 'soft'} {roc_auc(y[te], zr[C, h][te]):.3f}" for C, h in zr)
            + f"; HAM holdout pAUC phone {hold_p[-1]:.4f} routed " + ', '.join(f"{hold_r[v][-1]:.4f}" for v in zr))
    return dict(zp=zp, zr=zr, hold_p=hold_p, hold_r=hold_r, route_rows=route_rows, acc=acc)

def logits(m, x, bs=64):
    "Logits of student `m` on uint8 images `x`"
    with torch.no_grad(): return np.concatenate([m(torch.from_numpy(b)).numpy() for b in float_batches(x, bs)])

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--work', default='runs/phone_photos', help="where phone_photos.py kept its students (and the HAM10000 student goes)")
    ap.add_argument('--phone', default='in_distill_clean_e20_lr8', help='the kept phone-photo students: <phone>_s<seed>_f<fold>.pth')
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--n-derm', type=int, default=1500, help='HAM10000 pool images (random, never the holdout) for the routers')
    ap.add_argument('--n-degraded', type=int, default=400, help='HAM10000 holdout images scored under each simulated phone capture (where the router sends them)')
    ap.add_argument('--C', type=float, nargs='+', default=[0.1, 1.0], help="the routers' inverse regularisation strengths to compare")
    ap.add_argument('--size', type=int, default=128); ap.add_argument('--cache', default='.cache')
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--n-boot', type=int, default=1000)
    ap.add_argument('--out', default='benchmarks/results/phone_routed.md')
    ap.add_argument('--parts', default='runs/phone_routed', help='each seed\'s results, kept: a seed found there is read, not recomputed')
    a = ap.parse_args()
    torch.set_num_threads(a.threads); work = Path(a.work)
    pad, ham = pad_ufes20(), ham10000()
    files = {(s, f): work/f'{a.phone}_s{s}_f{f}.pth' for s in a.seeds for f in range(5)}
    miss = [str(p) for p in files.values() if not p.exists()]
    if miss: ap.error(f"missing kept students: {', '.join(miss[:3])}{' ...' if len(miss) > 3 else ''} (run phone_photos.py with --keep-seed)")
    hsd = pp.ham_pretrain(SimpleNamespace(ham=None, size=a.size, ham_epochs=3, bs=64, cache=a.cache, lr=4e-3), work, 'exclude', pad)
    derm = pp.saved_student(hsd)
    img = lambda d: np.asarray(ImageCache.build(d.df.image_ref, a.size, Path(a.cache), ids=d.ids, progress=False).array)
    X, Xh = img(pad), img(ham)
    y, g, fold = pad.df.malignant.to_numpy(), pad.df.patient_id.to_numpy(), pad.df.fold.to_numpy()
    hold = (ham.df.fold == 0).to_numpy(); yh = ham.df.malignant.to_numpy()[hold]; Xho = Xh[hold]
    pool = np.flatnonzero(~hold & (ham.df.dx != 'akiec').to_numpy())
    Xdeg = degraded(Xho[np.random.default_rng(0).choice(len(Xho), a.n_degraded, replace=False)])
    Xpool = Xh[np.sort(np.random.default_rng(0).choice(pool, a.n_derm, replace=False))]
    sets = dict(pad=X, hold=Xho, pool=Xpool, **{f'deg_{k}': v for k, v in Xdeg.items()})
    parts_dir = Path(a.parts); parts_dir.mkdir(parents=True, exist_ok=True)
    part = lambda s: parts_dir/f'{a.phone}_s{s}.pkl'
    Fd = {k: feats(derm, v) for k, v in sets.items()} if any(not part(s).exists() for s in a.seeds) else None   # the dermoscopy student's features: the same in every pair
    zd_pad, zd_hold = (head(derm, Fd['pad']), head(derm, Fd['hold'])) if Fd is not None else (logits(derm, X), logits(derm, Xho))
    R = dict(seeds=a.seeds, derm=dict(hold_pauc=partial_auc(yh, zd_hold), hold_auc=roc_auc(yh, zd_hold), photos_auc=roc_auc(y, zd_pad)))
    zr, zp, hold_r, hold_p, route_rows, acc = {}, {}, {}, [], [], []
    for s in a.seeds:
        if part(s).exists():               # a seed done by another process (--seeds S each, then all seeds for the report)
            Q = pickle.loads(part(s).read_bytes()); log(f"seed {s}: read {part(s)}")
        else: Q = one_seed(a, s, files, derm, Fd, sets, X, y, fold, yh, len(Xpool)); part(s).write_bytes(pickle.dumps(Q))
        zp[s] = Q['zp']; hold_p += Q['hold_p']; route_rows += Q['route_rows']; acc += Q['acc']
        for v, z in Q['zr'].items(): zr.setdefault(v, {})[s] = z; hold_r.setdefault(v, []).extend(Q['hold_r'][v])
    V = list(zr)
    ci = lambda z: bootstrap_ci(roc_auc, y, z, g, a.n_boot)
    cip = lambda z: bootstrap_ci(partial_auc, y, z, g, a.n_boot)
    mci = lambda zs, fn: fmt_ci(tuple(np.mean([fn(zs[s]) for s in a.seeds], 0)), 3)
    Zp = np.stack([zp[s] for s in a.seeds], 1)
    R.update(phone=dict(auc=[roc_auc(y, zp[s]) for s in a.seeds], pauc=[partial_auc(y, zp[s]) for s in a.seeds], hold_pauc=hold_p), router_train_accuracy=acc, routed={})
    for v in V:
        Zr = np.stack([zr[v][s] for s in a.seeds], 1)
        R['routed'][f"C={v[0]} {'hard' if v[1] else 'soft'}"] = dict(auc=[roc_auc(y, zr[v][s]) for s in a.seeds], pauc=[partial_auc(y, zr[v][s]) for s in a.seeds],
            hold_pauc=hold_r[v], diff_auc=paired_diff_ci(roc_auc, y, Zr, Zp, g, a.n_boot), diff_pauc=paired_diff_ci(partial_auc, y, Zr, Zp, g, a.n_boot))
    rt = pd.DataFrame(route_rows).groupby(['C', 'images'], sort=False).agg(n=('n', 'first'), to_dermoscopy=('to_dermoscopy', 'mean'), lowest=('to_dermoscopy', 'min'), highest=('to_dermoscopy', 'max'))
    d = R['derm']
    L = [f"# A dermoscopy student and the phone-photo student behind one router", "",
         f"`python benchmarks/phone_routed.py --seeds {' '.join(map(str, a.seeds))}` on this machine's CPU, {time.strftime('%Y-%m-%d')}. "
         f"Phone students: `{a.phone}` (the shipped recipe), fold models of seeds {', '.join(map(str, a.seeds))}; dermoscopy student: "
         f"`ham_noakiec` (HAM10000 pool, akiec out, 1 + 3 epochs, 128 px); each fold's router fitted on its training photos and "
         f"{a.n_derm} HAM10000 pool images (logistic regression, inverse regularisation C). Phone photos: pooled out of fold, grouped bootstrap over patients (95%), mean over seeds; "
         f"HAM10000 holdout: fold 0, 1,697 dermoscopy images, HAM10000's labels, mean (range) over the {len(hold_p)} fold pairs. "
         "Soft: the router-weighted mean of the two logits; hard: the logit of the student with the larger weight.", "",
         "| model | phone photos AUC [95% CI] | phone photos pAUC [95% CI] | routed minus phone student, AUC | HAM10000 holdout pAUC |", "|---|---|---|---|---|",
         f"| dermoscopy student alone (`ham_noakiec`) | {d['photos_auc']:.3f} | | | {d['hold_pauc']:.3f} |",
         f"| phone-photo student alone (`{a.phone}`) | {mci(zp, ci)} | {mci(zp, cip)} | | {np.mean(hold_p):.3f} ({min(hold_p):.3f}-{max(hold_p):.3f}) |"]
    for v in V:
        r = R['routed'][f"C={v[0]} {'hard' if v[1] else 'soft'}"]
        L.append(f"| both, routed, C {v[0]}, {'hard' if v[1] else 'soft'} | {mci(zr[v], ci)} | {mci(zr[v], cip)} | {fmt_ci(r['diff_auc'])} | {np.mean(r['hold_pauc']):.3f} ({min(r['hold_pauc']):.3f}-{max(r['hold_pauc']):.3f}) |")
    L += ["", "Where the router sends each kind of image (share to the dermoscopy student; mean, lowest and highest over the fold pairs; "
          f"{a.n_degraded} holdout images under each simulated phone capture at severity 3 of 5):", "", rt.to_markdown(floatfmt='.3f')]
    Path(a.out).write_text('\n'.join(L) + '\n'); (Path(a.out).with_suffix('.json')).write_text(json.dumps(R, indent=1, default=float))
    print('\n'.join(L))

if __name__ == '__main__': main()
