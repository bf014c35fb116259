"""A finished `lesion-run` on several sources, scored per source: each model on each source's part of the holdout (AUC
and pAUC with 95% bootstrap intervals over that source's groups), the steps' times and the run's wall time. Not a test.

    python benchmarks/run_sources.py runs/phone_tiles --wall "41 min 5 s" --out benchmarks/results/phone_tiles_run.md

A run that scored sources it did not train on (`lesion-run --phone` with dermoscopy beside the photos: `unseen.json`) gets
their table too; `--command` records the command as typed, since the run's own settings name only what it trained on.
"""
import argparse, json, time
from pathlib import Path
import pandas as pd
from lesion_fastai.metrics import roc_auc, partial_auc, bootstrap_ci, fmt_ci
from lesion_fastai.report import md_table, MODELS

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run', help="a finished lesion-run folder on several sources (--data A,B)")
    ap.add_argument('--wall', default='', help="the run's wall time as measured (e.g. with `time`), for the record")
    ap.add_argument('--out', default=None, help="markdown file to write (default: print only)")
    ap.add_argument('--n-boot', type=int, default=1000)
    ap.add_argument('--command', default=None, help="the lesion-run command as it was typed, where its --data named more folders than the run trained on")
    a = ap.parse_args()
    run = Path(a.run)
    P, cfg = pd.read_csv(run/'predictions.csv'), json.loads((run/'config.json').read_text())
    st = json.loads((run/'state.json').read_text())
    H = P[P.fold == cfg['holdout']]
    src = H.iloc[:, 0].astype(str).str.split(':').str[0]
    rows = []
    for s in src.unique():
        h = H[src == s]
        for m in [k for k in MODELS if k in h and h[k].notna().all()]:
            y, z, g = h.target.to_numpy(), h[m].to_numpy(), h.group.to_numpy()
            rows.append(dict(source=s, model=MODELS[m], images=len(h), malignant=int(y.sum()),
                             AUC=fmt_ci(bootstrap_ci(roc_auc, y, z, g, a.n_boot)), pAUC=fmt_ci(bootstrap_ci(partial_auc, y, z, g, a.n_boot), 4)))
    unseen = json.loads((run/'unseen.json').read_text()) if (run/'unseen.json').exists() else []   # `run.unseen_sources`
    seen_not = ("\n\nSources the run never trained on (`run.unseen_sources`: fold " + str(cfg['holdout']) + " of each one's own folds, one view):\n\n"
                + md_table(pd.DataFrame([dict(source=r['source'], model=MODELS.get(r['model'], r['model']), images=r['images'], malignant=r['malignant'],
                                              AUC=fmt_ci(r['auc']), pAUC=fmt_ci(r['pauc'], 4)) for r in unseen]))) if unseen else ''
    steps = pd.DataFrame([dict(step=k, time=f"{v.get('seconds', 0) / 60:.1f} min") for k, v in st.items() if 'seconds' in v]
                         + ([dict(step='the whole run (wall)', time=a.wall)] if a.wall else []))
    text = (f"# `lesion-run` on several sources, per source\n\n`python benchmarks/run_sources.py {a.run}`, {time.strftime('%Y-%m-%d')}: "
            f"the holdout (fold {cfg['holdout']} of each source's {cfg['n_folds']} folds) of " + (f"`{a.command}`, which trained on `--data {cfg['data']}`, " if a.command else f"`lesion-run` with `--data {cfg['data']}`, ")
            + "scored per source; 95% bootstrap intervals over each source's groups. This machine's 2 CPU cores"
            + (f"; wall time of the whole run: {a.wall}" if a.wall else '') + ".\n\n" + md_table(pd.DataFrame(rows))
            + seen_not + "\n\nTime per step:\n\n" + md_table(steps) + "\n")
    if a.out: Path(a.out).write_text(text)
    print(text)

if __name__ == '__main__': main()
