"""The model-only training limit: images/s of the student (timm backbone + head) doing forward, backward and
an optimiser step on random tensors already on the device, in fp32, fp32 with channels_last and (on a GPU) bf16
autocast with channels_last, optionally under `torch.compile`. On a CPU it also times the step at --small-size
(what progressive resizing buys). This is the ceiling that a data pipeline feeding the same model can approach;
compare it with the pipeline's training images/s. Not a test.

Usage: python benchmarks/gpu_throughput.py [--size 128] [--bs 256] [--steps 30] [--compile]
       python benchmarks/gpu_throughput.py --bs 64 --steps 6 --threads 2      # this machine's CPU"""
import argparse, time, json, torch
from lesion_fastai.backbones import create_backbone
from lesion_fastai.models import ImageModel
from common import train_args

def images_per_s(model, size, bs, steps, bf16, channels_last, device):
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.rand(bs, 3, size, size, device=device); y = (torch.rand(bs, device=device) < 0.2).float()
    if channels_last: x = x.contiguous(memory_format=torch.channels_last)
    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).float(), y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    for _ in range(5): step()
    if device.type == 'cuda': torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps): step()
    if device.type == 'cuda': torch.cuda.synchronize()
    return bs * steps / (time.perf_counter() - t0)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train_args(ap, size=128, bs=256)
    ap.add_argument('--steps', type=int, default=30); ap.add_argument('--arch', default='tf_efficientnet_lite0')
    ap.add_argument('--compile', action='store_true'); ap.add_argument('--threads', type=int, default=None)
    ap.add_argument('--small-size', type=int, default=96)
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    res = dict(device=torch.cuda.get_device_name(0) if dev.type == 'cuda' else 'CPU', size=a.size, bs=a.bs)
    variants = [('fp32', False, False, a.size), ('fp32_channels_last', False, True, a.size)]
    variants += [('bf16_channels_last', True, True, a.size)] if dev.type == 'cuda' else [(f'fp32_channels_last_{a.small_size}px', False, True, a.small_size)]
    for name, bf16, cl, size in variants:
        m = ImageModel(create_backbone(a.arch, pretrained=False)).to(dev)
        if cl: m = m.to(memory_format=torch.channels_last)
        res[name] = round(images_per_s(m, size, a.bs, a.steps, bf16, cl, dev), 1)
        if a.compile:
            res[name + '_compiled'] = round(images_per_s(torch.compile(m), size, a.bs, a.steps, bf16, cl, dev), 1)
    print(json.dumps(res))

if __name__ == '__main__': main()
