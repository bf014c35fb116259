"""Run every notebook in `nbs/` as a test (as `nbdev-test` does) and print a closing `N passed, N failed` line.

Usage: python tools/run_tests.py [--flags "slow"] [--n-workers 2] [notebook ...]
Cells flagged with `#| notest` or `#| slow` are skipped unless their flag is given in --flags.
Exits 1 when any notebook fails."""
import argparse, os, sys, time
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor, as_completed

ROOT = Path(__file__).resolve().parent.parent

def _run(fn, skip, force):
    from nbdev.test import test_nb
    os.chdir(ROOT/'nbs')
    t0 = time.time()
    ok, _ = test_nb(fn, skip_flags=skip, force_flags=force, showerr=True, basepath=str(ROOT))
    return fn, ok, time.time() - t0

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('notebooks', nargs='*', help='notebooks to run (default: all in nbs/)')
    ap.add_argument('--flags', default='', help='space-separated flags of cells to run that are normally skipped')
    ap.add_argument('--n-workers', type=int, default=2)
    a = ap.parse_args()
    from nbdev.config import get_config
    cfg = get_config(ROOT)
    force = a.flags.split()
    skip = [f for f in cfg.tst_flags.split() if f not in force]
    nbs = [Path(n).resolve() for n in a.notebooks] or sorted((ROOT/'nbs').glob('[0-9a-z]*.ipynb'))
    results = []
    with ProcessPoolExecutor(a.n_workers) as ex:
        futs = [ex.submit(_run, str(fn), skip, force) for fn in nbs]
        for f in as_completed(futs):
            fn, ok, t = f.result()
            results.append((fn, ok))
            print(f"{'PASS' if ok else 'FAIL'} {Path(fn).name} ({t:.0f}s)", flush=True)
    failed = [Path(fn).name for fn, ok in results if not ok]
    if failed: print("failed notebooks: " + ", ".join(sorted(failed)))
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
