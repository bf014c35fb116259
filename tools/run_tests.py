"""Run every notebook in `nbs/` as a test (as `nbdev-test` does) and print a closing `N passed, N failed` line.

Usage: python tools/run_tests.py [--flags "slow"] [--n-workers 2] [notebook ...]
Cells flagged with `#| notest` or `#| slow` are skipped unless their flag is given in --flags.
A notebook whose tests read the real images of `shared/data` (HAM10000, PAD-UFES-20, the ISIC 2024 tiles) is skipped
with one `SKIP` line naming what it needs when that folder is not found (a clone without `../shared`); CI has it.
Each notebook runs in a fresh Python process; a failing notebook's error is printed. Exits 1 when any fails.
Each notebook's process gets its own temporary folder (TMPDIR), removed when it ends, pass or fail: the notebooks'
examples write runs, bundles, wheels and a whole virtual environment under `tempfile.mkdtemp()`, and a full suite
left about 1,800 folders (over 50 GB) behind before, enough to fill the disk of the next run."""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor, as_completed

ROOT = Path(__file__).resolve().parent.parent
RUNNER = """
import sys, json
from nbdev.test import test_nb
ok, _ = test_nb(sys.argv[1], skip_flags=json.loads(sys.argv[2]), force_flags=json.loads(sys.argv[3]), showerr=True, basepath=sys.argv[4], save=sys.argv[5] == '1')
sys.exit(0 if ok else 1)
"""

def _thread_env(n_workers):
    """Environment giving each notebook process its share of the cores: two processes of two OpenMP threads each on
    two cores spin against each other (measured: one training loop 6.8 s alone, 34.6 s each when two run side by
    side, 12 s each with one thread apiece)"""
    env = dict(os.environ)
    n = str(max(1, len(os.sched_getaffinity(0)) // max(1, n_workers)))
    for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'): env.setdefault(k, n)
    return env

SHARED = ('ham10000', 'pad_ufes20', 'isic2024_tiles', 'isic2024_sample')   # the data sets under shared/data
SHARED_CALLS = ('find_shared(', 'find_ham10000(', 'shared_subset(', 'shared/data/')

def shared_needs(fn, skip):
    "The shared/data sets notebook `fn` reads in cells that run (not flagged with a flag in `skip`)"
    need = set()
    for c in json.loads(Path(fn).read_text())['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] != 'code' or any(f'#| {f}' in src for f in skip) or not any(k in src for k in SHARED_CALLS): continue
        need |= {n for n in SHARED if n in src} or {'ham10000'}
    return need

def shared_missing(names):
    "Those of `names` that `find_shared` does not find from the notebooks' folder"
    from lesion_fastai.data import find_shared
    cwd = os.getcwd(); os.chdir(ROOT/'nbs')
    try: return sorted(n for n in names if find_shared(n, required=False) is None)
    finally: os.chdir(cwd)

def _run(fn, skip, force, save=False, env=None):
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=f'nbtest-{Path(fn).stem}-', ignore_cleanup_errors=True) as tmp:
        p = subprocess.run([sys.executable, '-c', RUNNER, str(fn), json.dumps(skip), json.dumps(force), str(ROOT), '1' if save else '0'],
                           cwd=ROOT/'nbs', capture_output=True, text=True, env={**(env or os.environ), 'TMPDIR': tmp, 'TEMP': tmp, 'TMP': tmp})
    return fn, p.returncode == 0, time.time() - t0, p.stdout + p.stderr

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('notebooks', nargs='*', help='notebooks to run (default: all in nbs/)')
    ap.add_argument('--flags', default='', help='space-separated flags of cells to run that are normally skipped')
    ap.add_argument('--n-workers', type=int, default=2)
    ap.add_argument('--save', action='store_true', help='write the outputs back into the notebooks (for the docs)')
    a = ap.parse_args()
    from nbdev.config import get_config
    force = a.flags.split()
    skip = [f for f in get_config(ROOT).tst_flags.split() if f not in force]
    nbs = [Path(n).resolve() for n in a.notebooks] or sorted((ROOT/'nbs').glob('[0-9a-z]*.ipynb'))
    skipped = {}
    for fn in nbs:
        miss = shared_missing(shared_needs(fn, skip))
        if miss: skipped[fn] = miss
    for fn, miss in skipped.items(): print(f"SKIP {fn.name} (needs shared/data/{', shared/data/'.join(miss)}, not found: put shared/ beside the clone)", flush=True)
    nbs = [fn for fn in nbs if fn not in skipped]
    results, env = [], _thread_env(max(1, min(a.n_workers, len(nbs))))
    with ThreadPoolExecutor(a.n_workers) as ex:
        for f in as_completed([ex.submit(_run, fn, skip, force, a.save, env) for fn in nbs]):
            fn, ok, t, out = f.result()
            results.append((fn, ok))
            print(f"{'PASS' if ok else 'FAIL'} {Path(fn).name} ({t:.0f}s)", flush=True)
            if not ok: print('\n'.join(l for l in out.splitlines() if 'arn' not in l)[-6000:], flush=True)
    failed = sorted(Path(fn).name for fn, ok in results if not ok)
    if failed: print("failed notebooks: " + ", ".join(failed))
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed" + (f", {len(skipped)} skipped" if skipped else ''))
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
