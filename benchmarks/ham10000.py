"""Benchmark on real images: HAM10000 (malignant = mel/bcc/akiec; group = lesion_id; metadata = age, sex, site).

Runs the pipeline (`lesion_fastai.pipeline.run_pipeline`: grouped 5 folds, holdout fold 0, metadata GBDT,
teacher with out-of-fold logits over the pool, distilled and plain student) and adds:
- the plain fastai alternative: `vision_learner` fine-tune of the same backbone with the same ImageNet weights,
  data, image size and epochs;
- more seeds of the three image-only models (plain student, distilled student, vision_learner), so that the
  comparison does not rest on one lucky seed. The teacher's out-of-fold logits are shared by all seeds.
Writes `benchmark.json` and `benchmark.md` to --out (and everything the pipeline writes). Not a test.

Usage: python benchmarks/ham10000.py --data ../shared/data/ham10000 --out runs/ham --size 128 --epochs 5 --seeds 0 1 2"""
import argparse, json, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from sklearn.metrics import roc_auc_score
from fastai.vision.all import vision_learner, Normalize
from fastai.torch_core import set_seed
from lesion_fastai.data import read_lesions
from lesion_fastai.splits import add_folds
from lesion_fastai.cache import ImageCache
from lesion_fastai.datablock import lesion_dataloaders, lesion_loss
from lesion_fastai.backbones import lite0_state_dict
from lesion_fastai.metrics import partial_auc, RocAUC, PartialAUC, bootstrap_ci, paired_diff_ci, fmt_ci
from lesion_fastai.train import train_model, fit_learner, predict_logits
from lesion_fastai.config import RunConfig
from lesion_fastai.pipeline import run_pipeline
from lesion_fastai.metamodel import soft_targets, stack_oof
from common import train_args

def vision_learner_baseline(data, valid, cfg, cache, seed):
    "What a fastai user would do: vision_learner + fine_tune, same backbone and weights, same budget"
    set_seed(seed)
    dls = lesion_dataloaders(data, valid, size=cfg.size, bs=cfg.bs, cache=cache, meta=False, num_workers=cfg.num_workers)
    dls.train.rng.seed(seed)
    dls.add_tfms([Normalize.from_stats([.5] * 3, [.5] * 3)], 'after_batch')   # Lite0's statistics
    learn = vision_learner(dls, cfg.arch, pretrained=False, n_out=1, loss_func=lesion_loss(), metrics=[RocAUC(), PartialAUC()])
    if cfg.arch == 'tf_efficientnet_lite0':
        learn.model[0].model.load_state_dict({k: v for k, v in lite0_state_dict().items() if not k.startswith('classifier.')})
    fit_learner(learn, cfg.epochs, cfg.lr, cfg.freeze_epochs)
    return predict_logits(learn).reshape(-1)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True); ap.add_argument('--out', default='runs/ham')
    train_args(ap, size=128, bs=64)
    train_args(ap, epochs=5, freeze_epochs=1)
    train_args(ap, lr=2e-3, alpha=0.5)
    ap.add_argument('--T', type=float, default=2.0); ap.add_argument('--soft', default='teacher')
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2]); ap.add_argument('--num-workers', type=int, default=0)
    ap.add_argument('--limit-groups', type=int, default=None, help='smoke test: keep this many lesions only')
    ap.add_argument('--extra-soft', nargs='*', default=[], help='also distil students from these soft-target sources (stack, gbdt, blend), every seed')
    ap.add_argument('--no-export', action='store_true'); ap.add_argument('--no-robustness', action='store_true')
    train_args(ap, prevalence=None)
    ap.add_argument('--stop-after', type=float, default=None, help='start no more extra models after this many seconds (the table keeps the finished ones)')
    a = ap.parse_args()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    data_dir = a.data
    if a.limit_groups:   # a smaller copy of the table, same images
        ds = read_lesions(a.data, spec='ham10000')
        keep = pd.Series(ds.df.lesion_id.unique()).sample(a.limit_groups, random_state=0)
        sub = out/'subset'; sub.mkdir(exist_ok=True)
        ds.df[ds.df.lesion_id.isin(keep)].drop(columns=['image_ref']).to_csv(sub/'metadata.csv', index=False)
        (sub/'images').unlink(missing_ok=True); (sub/'images').symlink_to(Path(a.data).resolve()/'images')
        data_dir = str(sub)
    cfg = RunConfig(data=data_dir, preset='ham10000', size=a.size, bs=a.bs, epochs=a.epochs, freeze_epochs=a.freeze_epochs,
                    lr=a.lr, alpha=a.alpha, T=a.T, soft=a.soft, seed=a.seeds[0], num_workers=a.num_workers,
                    export=not a.no_export, robustness=not a.no_robustness, prevalence=a.prevalence)
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU'
    t0 = time.time()
    run_pipeline(cfg, out/'pipeline')
    wall = json.loads((out/'wall.json').read_text()) if (out/'wall.json').exists() else dict(pipeline=time.time() - t0)
    (out/'wall.json').write_text(json.dumps(wall))   # the first call's: a resumed run's pipeline wall time is not its own
    print(f"pipeline wall: {wall['pipeline']:.0f}s", flush=True)
    data = add_folds(read_lesions(data_dir, spec='ham10000'), cfg.n_folds, cfg.seed)
    is_hold = (data.df.fold == cfg.holdout).to_numpy()
    P = pd.read_csv(out/'pipeline'/'predictions.csv')
    data.df['soft'] = np.nan
    data.df.loc[~is_hold, 'soft'] = soft_targets(P[~is_hold], cfg.soft)
    if 'stack' in a.extra_soft and 'stack_oof' not in P:   # the run stacks only when its own soft source is the stack
        P['stack_oof'] = stack_oof(data, P.teacher_oof, [f for f in range(cfg.n_folds) if f != cfg.holdout], cfg.seed)
    for src in a.extra_soft:
        data.df[f'soft_{src}'] = np.nan
        data.df.loc[~is_hold, f'soft_{src}'] = soft_targets(P[~is_hold], src)
    cache = ImageCache.build(data.df.image_ref, cfg.size, out/'pipeline'/'cache', ids=data.ids)
    H = P[is_hold].reset_index(drop=True)
    sf = out/'seeds.csv'
    S = pd.read_csv(sf) if sf.exists() else pd.DataFrame({'target': H.target, 'group': H.group,
         'student_plain_s0': H.student_plain, 'student_distilled_s0': H.student_distilled})
    secs = json.loads((out/'seconds.json').read_text()) if (out/'seconds.json').exists() else {}
    common = dict(size=cfg.size, bs=cfg.bs, epochs=cfg.epochs, freeze_epochs=cfg.freeze_epochs, lr=cfg.lr, cache=cache,
                  num_workers=cfg.num_workers, path=out)
    for i, s in enumerate(a.seeds):
        jobs = [] if i == 0 else [   # seed 0's students are the pipeline's
            ('student_plain', lambda: train_model(data, is_hold, 'student', cfg.arch, seed=s, **common)[1]),
            ('student_distilled', lambda: train_model(data, is_hold, 'student', cfg.arch, seed=s, soft_col='soft', alpha=cfg.alpha, T=cfg.T, **common)[1])]
        jobs += [(f'student_distilled_{src}', lambda src=src: train_model(data, is_hold, 'student', cfg.arch, seed=s, soft_col=f'soft_{src}',
                                                                           alpha=cfg.alpha, T=cfg.T, **common)[1]) for src in a.extra_soft]
        jobs += [('vision_learner', lambda: vision_learner_baseline(data, is_hold, cfg, cache, s))]
        for name, fn in jobs:
            col = f'{name}_s{i}'
            if col in S: continue
            if a.stop_after and time.time() - t0 > a.stop_after: print(f"{col}: not trained (--stop-after)", flush=True); continue
            t1 = time.time(); S[col] = fn(); secs[col] = time.time() - t1
            S.to_csv(sf, index=False); (out/'seconds.json').write_text(json.dumps(secs))
            print(f"{col}: pAUC {partial_auc(S.target, S[col]):.4f} AUC {roc_auc_score(S.target, S[col]):.4f} ({secs[col]:.0f}s)", flush=True)
    m = json.loads((out/'pipeline'/'metrics.json').read_text())
    t_pipe = sum(v.get('seconds', 0) for v in json.loads((out/'pipeline'/'state.json').read_text()).values() if isinstance(v, dict))
    y, g = S.target.to_numpy(), S.group.to_numpy()
    rows = {}
    names = ['vision_learner', 'student_plain', 'student_distilled'] + [f'student_distilled_{src}' for src in a.extra_soft]
    for name in names:
        cols = [c for c in (f'{name}_s{i}' for i in range(len(a.seeds))) if c in S]   # a run cut short: the finished seeds
        if not cols: continue
        rows[name] = dict(pauc=[partial_auc(y, S[c]) for c in cols], auc=[roc_auc_score(y, S[c]) for c in cols],
                          pauc_ci_s0=bootstrap_ci(partial_auc, y, S[cols[0]].to_numpy(), g, 1000),
                          auc_ci_s0=bootstrap_ci(roc_auc_score, y, S[cols[0]].to_numpy(), g, 1000))
    res = dict(device=dev, config=vars(a), pipeline_seconds=t_pipe, pipeline_wall_seconds=wall['pipeline'], seconds=secs, pipeline=m, image_only=rows,
               holdout=dict(images=int(len(S)), malignant=int(y.sum()), groups=int(len(set(g)))))
    L = [f"HAM10000 benchmark on {dev}: {a.size}px, {a.freeze_epochs} frozen + {a.epochs} unfrozen epochs, batch {a.bs}, "
         f"lr {a.lr}; holdout = fold 0 of 5 lesion-grouped folds ({len(S)} images, {int(y.sum())} malignant); seeds {a.seeds}.", "",
         "| model | inputs | pAUC, seed 0 [95% CI] | AUC, seed 0 [95% CI] | pAUC per seed (mean) | AUC per seed (mean) |", "|---|---|---|---|---|---|"]
    for k, lab in (('gbdt', 'metadata GBDT'), ('teacher', 'teacher (FiLM)')):
        L.append(f"| {lab} | {'metadata' if k == 'gbdt' else 'image + metadata'} | {fmt_ci(m['models'][k]['pauc'])} | {fmt_ci(m['models'][k]['auc'])} | | |")
    labels = dict(vision_learner='fastai vision_learner fine-tune', student_plain='student, plain', student_distilled=f'student, distilled ({cfg.soft})',
                  **{f'student_distilled_{src}': f'student, distilled ({src})' for src in a.extra_soft})
    for k in rows:
        r, lab = rows[k], labels[k]
        L.append(f"| {lab} | image | {fmt_ci(r['pauc_ci_s0'])} | {fmt_ci(r['auc_ci_s0'])} | "
                 f"{', '.join(f'{v:.4f}' for v in r['pauc'])} ({np.mean(r['pauc']):.4f}) | {', '.join(f'{v:.3f}' for v in r['auc'])} ({np.mean(r['auc']):.3f}) |")
    L += ["", "Paired differences in pAUC, mean over the seeds both models have, with a 95% grouped paired bootstrap interval "
          "(the teacher is the pipeline's one seed):", ""]
    res['paired'] = {}
    for k in [k for k in rows if k.startswith('student_distilled')]:
        for ref in ('student_plain', 'teacher', 'vision_learner'):
            ks = [i for i in range(len(a.seeds)) if f'{k}_s{i}' in S and (ref == 'teacher' or f'{ref}_s{i}' in S)]
            if not ks: continue
            A = S[[f'{k}_s{i}' for i in ks]].to_numpy()
            B = H.teacher.to_numpy() if ref == 'teacher' else S[[f'{ref}_s{i}' for i in ks]].to_numpy()
            d = paired_diff_ci(partial_auc, y, A, B, g); res['paired'][f'{k} - {ref}'] = dict(seeds=ks, diff=d)
            L.append(f"- {labels[k]} minus {labels.get(ref, 'teacher')}: {d[0]:+.4f} [{d[1]:+.4f}, {d[2]:+.4f}] ({len(ks)} seeds)")
    (out/'benchmark.json').write_text(json.dumps(res, indent=1))
    L += ["", f"Pipeline wall time {wall['pipeline']:.0f}s. Training time of the pipeline's models (GBDT, 5 teachers, 2 students): {t_pipe:.0f}s; extra runs: " + ', '.join(f'{k} {v:.0f}s' for k, v in secs.items())]
    (out/'benchmark.md').write_text('\n'.join(L) + '\n')
    print('\n'.join(L))

if __name__ == '__main__': main()
