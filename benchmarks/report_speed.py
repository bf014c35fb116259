"""Time the pipeline's evaluation step (`report.report`: metrics with grouped bootstrap intervals for every model,
the subgroup tables, calibration, plots) on the saved holdout predictions of a finished `lesion-run`, in a copy of
the run folder (the run itself is not touched). The student's cost line (latency of its saved weights) reads NaN
when the run's weights were not kept: the statistics are what is timed. Not a test.

To compare with an earlier version of the package, put that version first on the path:
    git archive 7e7dd05 lesion_fastai | tar x -C /tmp/old && PYTHONPATH=/tmp/old python benchmarks/report_speed.py runs/ham_h200

Usage: python benchmarks/report_speed.py RUN_FOLDER"""
import argparse, json, shutil, tempfile, time
from pathlib import Path
import lesion_fastai, lesion_fastai.report as lp
from lesion_fastai.config import Run
from lesion_fastai.tune import load_run

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run', help='output folder of a finished lesion-run (config.json, predictions.csv)')
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for f in ('config.json', 'predictions.csv', 'state.json', 'folds.csv'): shutil.copy(Path(a.run)/f, tmp)
        shutil.copytree(Path(a.run)/'models', Path(tmp)/'models')
        c, data, P = load_run(tmp)                 # the run's settings, its table with its folds (checked), its predictions
        run = Run(tmp, c)
        if not (Path(tmp)/'models'/'student_distilled.json').exists():
            lp.student_cost = lambda bundle, size: dict(params_m=float('nan'), file_mb=float('nan'), cpu_ms_1thread=float('nan'))
        H = P[P.fold == c.holdout].reset_index(drop=True)
        t0 = time.time(); m = lp.report(run, H, data); dt = time.time() - t0
    print(json.dumps(dict(package=str(Path(lesion_fastai.__file__).parent), holdout_images=len(H), models=len(m['models']),
                          report_s=round(dt, 1), pauc={k: v['pauc'] for k, v in m['models'].items()})))

if __name__ == '__main__': main()
