"""The main job as a newcomer runs it, timed, and its results saved for the README: `lesion-run --out runs/demo` on the
embedded synthetic set (with nothing else running), its metrics, state, report and export report copied to
benchmarks/results/demo/ with the wall time; with --twice a second run in runs/demo2 and the check that every number
of the report is the same (timings aside). The docs build fills the README's demo numbers from that folder
(tools/readme_numbers.py).

Usage: python benchmarks/demo.py [--twice]"""
import argparse, json, os, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT/'benchmarks'/'results'/'demo'

def run(out:Path) -> float:
    "Run the main job from scratch into `out`; its wall seconds"
    if out.exists(): shutil.rmtree(out)
    t0 = time.time()
    subprocess.run([str(Path(sys.executable).parent/'lesion-run'), '--out', str(out)], check=True, cwd=ROOT)
    return time.time() - t0

def numbers(run:Path) -> dict:
    "Everything a run computed, timings (training seconds, latencies) aside: metrics, predictions, export checks"
    m = json.loads((run/'metrics.json').read_text()); m.pop('seconds'); m['student'].pop('cpu_ms_1thread')
    ex = json.loads((run/'export'/'export_report.json').read_text())
    checks = {f: {k: v for k, v in e.items() if k != 'latency_ms_1thread'} for f, e in ex['exports'].items()}
    return dict(metrics=m, predictions=(run/'predictions.csv').read_text(), exports=checks, operating_point=ex['operating_point'])

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--twice', action='store_true', help='run a second time and compare the reports')
    a = ap.parse_args()
    first = ROOT/'runs'/'demo'
    wall = run(first)
    OUT.mkdir(parents=True, exist_ok=True); (OUT/'export').mkdir(exist_ok=True)
    for f in ('metrics.json', 'state.json', 'config.json', 'report.md'): shutil.copy(first/f, OUT/f)
    shutil.copy(first/'export'/'export_report.json', OUT/'export'/'export_report.json')
    info = dict(command='lesion-run --out runs/demo', wall_seconds=round(wall, 1), cpus=os.cpu_count(), date=time.strftime('%Y-%m-%d %H:%M'))
    if a.twice:
        second = ROOT/'runs'/'demo2'
        info['second_wall_seconds'] = round(run(second), 1)
        info['reproduced'] = numbers(first) == numbers(second)
    (OUT/'run.json').write_text(json.dumps(info, indent=1))
    print(json.dumps(info))

if __name__ == '__main__': main()
