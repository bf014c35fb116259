"""ISIC 2024 at its real size on this machine: a synthetic set of 401,059 images over 1,042 patients (about 1
malignant per 1,000), then each step of the pipeline's data path and one student epoch, each in its own process,
timed (wall seconds) and measured: peak resident memory (GNU time's maximum RSS, which counts the pages of a memory-mapped
file the process touched) and peak anonymous memory of the step's process tree (heap and stacks, sampled every 0.5 s:
what the step really holds).

Steps: synth (`lesion-synth --n-images`), check (`lesion-check`), folds (`lesion-folds`), gbdt (the metadata model's
out-of-fold predictions over the 4 pool folds, fold 0 held out), cache (`lesion-cache`, the memory-mapped uint8
images at --size), student (one unfrozen epoch of the image-only student with negative resampling, phone
degradations on, then validation over the whole of fold 0). Results go to OUT/scale.json after every step; run the
same command again to resume after the last finished step. Not a test.

Usage: python benchmarks/isic_scale.py --out /tmp/isic401k [--n-images 401059] [--n-patients 1042] [--jobs 2]
       [--size 128] [--neg-per-pos 20] [--bs 64]"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

STEPS = ['synth', 'check', 'folds', 'gbdt', 'cache', 'student']

def command(step, a, data, out):
    "The shell command of one step"
    me = [sys.executable, os.path.abspath(__file__)]
    cli = lambda name: str(Path(sys.executable).parent/name)   # the console scripts of this environment
    return {'synth': [cli('lesion-synth'), str(data), '--n-patients', str(a.n_patients), '--n-images', str(a.n_images),
                      '--malignant-rate', str(a.rate), '--jobs', str(a.jobs), '--seed', '0'],
            'check': [cli('lesion-check'), str(data)],
            'folds': [cli('lesion-folds'), str(data), '--out', str(out/'folds.csv'), '--seed', '0'],
            'gbdt': me + ['--inner', 'gbdt', '--out', str(out)],
            'cache': [cli('lesion-cache'), str(data), '--size', str(a.size), '--folder', str(out/'cache')],
            'student': me + ['--inner', 'student', '--out', str(out), '--size', str(a.size), '--bs', str(a.bs),
                             '--neg-per-pos', str(a.neg_per_pos)]}[step]

def _tree(pid):
    "A process and its descendants"
    out, todo = [], [pid]
    while todo:
        q = todo.pop(); out.append(q)
        for t in Path(f'/proc/{q}/task').glob('*/children'):
            try: todo += [int(c) for c in t.read_text().split()]
            except OSError: pass
    return out

def _anon_kb(pid):
    "Anonymous resident memory of a process in KB (heap and stacks; not the page cache of mapped files)"
    try:
        for l in Path(f'/proc/{pid}/status').read_text().splitlines():
            if l.startswith('RssAnon:'): return int(l.split()[1])
    except OSError: pass
    return 0

def run_measured(cmd):
    "Run `cmd`; return the finished process (output captured) and the peak anonymous memory of its process tree in KB"
    import tempfile
    with tempfile.TemporaryFile('w+') as o, tempfile.TemporaryFile('w+') as e:
        p = subprocess.Popen(cmd, stdout=o, stderr=e, text=True); peak = 0
        while p.poll() is None:
            peak = max(peak, sum(_anon_kb(q) for q in _tree(p.pid))); time.sleep(0.5)
        o.seek(0); e.seek(0)
        return subprocess.CompletedProcess(cmd, p.returncode, o.read(), e.read()), peak

def _data(out):
    import pandas as pd
    from lesion_fastai.data import read_isic2024
    d = read_isic2024(out/'data', progress=False)
    folds = pd.read_csv(out/'folds.csv')
    d.df['fold'] = d.df.isic_id.map(dict(zip(folds.isic_id, folds.fold))).to_numpy()
    return d

def inner_gbdt(a, out):
    "The metadata GBDT's out-of-fold predictions over the pool (folds 1-4), as the pipeline makes them"
    from lesion_fastai.metamodel import oof_predict
    from lesion_fastai.metrics import partial_auc
    d = _data(out)
    oof, _ = oof_predict(d, folds=[1, 2, 3, 4], progress=False)
    pool = d.df.fold != 0
    print(json.dumps(dict(rows=int(pool.sum()), positives=int(d.df.target[pool].sum()),
                          oof_pauc=round(partial_auc(d.df.target[pool], oof[pool]), 4))))

def inner_student(a, out):
    "One unfrozen epoch of the student with negative resampling, then validation over fold 0"
    import torch
    from lesion_fastai.cache import ImageCache
    from lesion_fastai.datablock import lesion_dataloaders
    from lesion_fastai.models import student_learner
    from lesion_fastai.train import fit_learner
    from lesion_fastai.callbacks import TrainClockCallback
    from lesion_fastai.metrics import partial_auc
    torch.set_num_threads(os.cpu_count())
    d = _data(out)
    cache = ImageCache.build(d.df.image_ref, a.size, out/'cache', progress=False)   # the one the cache step built
    dls = lesion_dataloaders(d, valid=0, size=a.size, bs=a.bs, cache=cache, meta=False, neg_per_pos=a.neg_per_pos)
    clock = TrainClockCallback()
    learn = student_learner(dls, path=out, cbs=[clock])
    with learn.no_bar(): fit_learner(learn, epochs=1, freeze_epochs=0, lr=2e-3)
    print(json.dumps(dict(train_images=clock.images['train'], train_s=round(clock.seconds['train'], 1),
                          train_img_s=round(clock.rates()['train'], 1),
                          valid_images=clock.images['valid'], valid_s=round(clock.seconds['valid'], 1),
                          valid_img_s=round(clock.rates()['valid'], 1),
                          valid_pauc=round(float(learn.recorder.values[-1][-1]), 4))))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True); ap.add_argument('--n-images', type=int, default=401_059)
    ap.add_argument('--n-patients', type=int, default=1042); ap.add_argument('--rate', type=float, default=393 / 401_059)
    ap.add_argument('--jobs', type=int, default=2); ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--bs', type=int, default=64); ap.add_argument('--neg-per-pos', type=float, default=20)
    ap.add_argument('--inner', choices=['gbdt', 'student'], help=argparse.SUPPRESS)
    a = ap.parse_args()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    if a.inner: return globals()[f'inner_{a.inner}'](a, out)
    res_f = out/'scale.json'
    res = json.loads(res_f.read_text()) if res_f.exists() else {}
    for step in STEPS:
        if step in res: print(f"{step}: done before ({res[step]['wall_s']} s)"); continue
        cmd = command(step, a, out/'data', out)
        print(f"{step}: {' '.join(cmd)}", flush=True)
        p, peak_anon = run_measured(['/usr/bin/time', '-f', 'TIME %e %M'] + cmd)
        tail = [l for l in p.stderr.splitlines() if l.startswith('TIME ')]
        if p.returncode != 0 or not tail:
            sys.exit(f"step {step} failed (exit {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        wall, rss = tail[-1].split()[1:]
        last = [l for l in p.stdout.strip().splitlines() if l.startswith('{')]
        res[step] = dict(wall_s=round(float(wall), 1), peak_rss_gb=round(int(rss) / 2**20, 2),
                         peak_anon_gb=round(peak_anon / 2**20, 2), command=' '.join(cmd),
                         **(json.loads(last[-1]) if last else {}))
        print(f"  {res[step]}", flush=True)
        res_f.write_text(json.dumps(res, indent=1))
    du = lambda p: sum(f.stat().st_size for f in Path(p).rglob('*') if f.is_file()) / 1e9
    res['disk_gb'] = dict(data=round(du(out/'data'), 2), cache=round(du(out/'cache'), 2))
    res_f.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))

if __name__ == '__main__': main()
