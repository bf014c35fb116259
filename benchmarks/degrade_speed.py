"""Cost of the phone-degradation sampler on a training batch: one call per degraded image (how `random_degrade` worked
before) against one batched call per kind (now), in milliseconds and in operations on image tensors (each one a
kernel launch on a GPU).

    python benchmarks/degrade_speed.py [--bs 64] [--size 128] [--threads 2]
"""
import argparse, time, torch
from torch.profiler import profile, ProfilerActivity
from lesion_fastai.degrade import random_degrade, degrade, check_degradations
from common import train_args

def per_image(x, p=0.5, severity=(1., 5.), degradations=None):
    "The former sampler: the same draws, then `degrade` image by image"
    degradations = check_degradations(degradations); n = x.shape[0]
    hit = torch.nonzero(torch.rand(n) < p).flatten().tolist()
    which, sev = torch.multinomial(torch.ones(len(degradations)), n, replacement=True), severity[0] + torch.rand(n) * (severity[1] - severity[0])
    y = x.clone()
    for i in hit: y[i:i + 1] = degrade(y[i:i + 1], degradations[which[i]], float(sev[i]), seed=None)
    return y

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train_args(ap, bs=64, size=128)
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--reps', type=int, default=20)
    a = ap.parse_args(); torch.set_num_threads(a.threads)
    x = torch.rand(a.bs, 3, a.size, a.size)
    print(f"| p | sampler | ms per batch of {a.bs} at {a.size} px (median of {a.reps}) | operations on image tensors |")
    print("|---|---|---|---|")
    for p in (0.5, 1.0):
        for name, f in (('one call per image (before)', per_image), ('one call per kind (random_degrade)', random_degrade)):
            torch.manual_seed(0); f(x, p); ts = []
            for _ in range(a.reps):
                t = time.perf_counter(); f(x, p); ts.append(time.perf_counter() - t)
            torch.manual_seed(0)
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof: f(x, p)
            ops = [e for e in prof.events() if e.name.startswith('aten::') and e.cpu_parent is None
                   and any(isinstance(s, list) and len(s) == 4 and s[-1] >= a.size // 8 for s in e.input_shapes)]
            print(f"| {p} | {name} | {sorted(ts)[len(ts) // 2] * 1000:.1f} | {len(ops)} |", flush=True)

if __name__ == '__main__': main()
