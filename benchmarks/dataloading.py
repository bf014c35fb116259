"""Benchmark: one epoch of training-set data loading with augmentation on HAM10000 at 128 px.

(a) the plain fastai pipeline a user would write: `ImageDataLoaders.from_df` + `Resize` + `aug_transforms`
    (decodes and resizes every JPEG every epoch);
(b) lesion_fastai item by item (`batched=False`, fastai's per-item path) reading the memory-mapped `ImageCache`
    (built once; its build time is reported separately), same split, batch size, augmentation (fastai's
    `aug_transforms`) and number of workers, image + metadata inputs;
(c) lesion_fastai's batched path (one fancy index of the cache per batch, metadata encoded once), same
    `aug_transforms`;
(d) the default `lesion_dataloaders`: batched, with lesion_fastai's default augmentation (`lesion_aug`: one affine
    resample + pixel-space lighting, no perspective warp).

Usage: python benchmarks/dataloading.py [--size 128] [--bs 64] [--num-workers 0] [--epochs 2]
Prints seconds per epoch and images/s for each, and their ratio to (a). Not a test: nothing is asserted."""
import argparse, time, tempfile, shutil
from pathlib import Path
import numpy as np, torch
from fastai.vision.all import ImageDataLoaders, Resize, aug_transforms, IndexSplitter
from lesion_fastai.data import read_image_folder, find_ham10000
from lesion_fastai.splits import add_folds
from lesion_fastai.cache import ImageCache
from lesion_fastai.datablock import lesion_dataloaders, lesion_aug
from common import train_args

def epoch_time(dl):
    t0 = time.perf_counter(); n = 0
    for b in dl: n += len(b[0])
    return time.perf_counter() - t0, n

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train_args(ap, size=128, bs=64)
    train_args(ap, num_workers=0, epochs=2)
    a = ap.parse_args()
    torch.set_num_threads(2)
    ham = add_folds(read_image_folder(find_ham10000()/'images', find_ham10000()/'metadata.csv'), seed=0)
    df = ham.df; valid = np.flatnonzero(df.fold == 0)
    aug = lambda: aug_transforms(do_flip=True, flip_vert=True, max_rotate=180.)
    print(f"HAM10000: {len(df)} images, train {len(df) - len(valid)}, {a.size}px, bs {a.bs}, num_workers {a.num_workers}, torch threads 2")
    plain = ImageDataLoaders.from_df(df, path='/', fn_col='image_ref', label_col='malignant', valid_idx=valid,
                                     item_tfms=Resize(a.size), batch_tfms=aug(), bs=a.bs, num_workers=a.num_workers)
    tmp = Path(tempfile.mkdtemp())
    t0 = time.perf_counter(); cache = ImageCache.build(df.image_ref, a.size, tmp, ids=ham.ids); t_cache = time.perf_counter() - t0
    kw = dict(valid=0, size=a.size, bs=a.bs, cache=cache, num_workers=a.num_workers)
    item = lesion_dataloaders(ham, batch_tfms=aug(), batched=False, **kw)
    batched = lesion_dataloaders(ham, batch_tfms=aug(), **kw)
    default = lesion_dataloaders(ham, **kw)
    assert batched.train.batched and default.train.batched and not item.train.batched
    res = {}
    for name, dls in (('(a) plain fastai: decode + resize each epoch, aug_transforms', plain),
                      ('(b) lesion_fastai item by item: ImageCache, image + metadata, same aug_transforms', item),
                      ('(c) lesion_fastai batched: ImageCache, image + metadata, same aug_transforms', batched),
                      ('(d) lesion_fastai default: batched, image + metadata, lesion_aug', default)):
        ts = [epoch_time(dls.train) for _ in range(a.epochs)]
        res[name] = np.mean([t for t, _ in ts])
        print(f"{name}: {', '.join(f'{t:.2f}s' for t, _ in ts)} per epoch ({ts[0][1]} images); "
              f"mean {res[name]:.2f}s = {ts[0][1] / res[name]:,.0f} images/s")
    (p, o, b, d) = res.values()
    print(f"cache build (once, {len(df)} images): {t_cache:.1f}s; {cache.path.with_suffix('.u8').stat().st_size/1e6:.0f} MB")
    print(f"speed-up per epoch over (a): (b) {p / o:.1f}x, (c) {p / b:.1f}x with the same augmentation, "
          f"(d) {p / d:.1f}x with the defaults; the cache pays for itself after {t_cache / max(p - b, 1e-9):.2f} epochs")
    shutil.rmtree(tmp)

if __name__ == '__main__': main()
