"""How fast a run reads a saved student on the CPU: PyTorch eager against `pipeline.logit_fn` (ONNX Runtime, checked
against PyTorch), the reading behind the run's robustness and TTA steps, on the images the run held out.

Usage: python benchmarks/bundle_reading.py RUN_DIR [--model student_distilled] [--n 1024] [--out benchmarks/results/bundle_reading.md]"""
import argparse, time, datetime, numpy as np, torch
from pathlib import Path
from lesion_fastai.pipeline import logit_fn
from lesion_fastai.cache import float_batches
from lesion_fastai.ship import run_images

def rate(fn, images, bs=64):
    "Images per second, and the logits, reading `images` in batches of `bs` after one warm-up batch"
    fn(next(float_batches(images[:bs], bs)))
    t0 = time.perf_counter(); z = np.concatenate([fn(b) for b in float_batches(images, bs)])
    return len(images) / (time.perf_counter() - t0), z

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run'); ap.add_argument('--model', default='student_distilled'); ap.add_argument('--n', type=int, default=1024)
    ap.add_argument('--out', default=None)
    a = ap.parse_args()
    ims = np.asarray(run_images(a.run, 0)['val'])[:a.n]
    bundle = Path(a.run)/'models'/a.model
    r_t, z_t = rate(logit_fn(bundle, onnx=False), ims)
    fo = logit_fn(bundle); r_o, z_o = rate(fo, ims)
    lines = [f"# Reading a saved student on the CPU", "",
             f"`python benchmarks/bundle_reading.py {a.run} --model {a.model} --n {a.n}`, {datetime.date.today()}, this machine "
             f"({torch.get_num_threads()} threads): {len(ims)} held-out images of the run at {ims.shape[1]} px, batches of 64, after one warm-up batch.", "",
             "| reader | images per second | max abs logit difference from PyTorch |", "|---|---|---|",
             f"| PyTorch eager (`logit_fn(bundle, onnx=False)`) | {r_t:.0f} | 0 |",
             f"| ONNX Runtime (`logit_fn(bundle)`, backend {fo.backend}) | {r_o:.0f} | {np.abs(z_o - z_t).max():.1e} |", "",
             f"ONNX Runtime reads {r_o / r_t:.1f}x as many images a second."]
    print('\n'.join(lines))
    if a.out: Path(a.out).write_text('\n'.join(lines) + '\n')
