"""Write a copy of an image-folder dataset (`images/` + `metadata.csv`) with every image centre-cropped and resized to
SIZE px and re-encoded as JPEG: small enough to ship to a GPU machine. A tool, not a measurement.

Usage: python benchmarks/shrink_images.py SRC DEST [--size 128] [--quality 90]"""
import argparse, shutil
from pathlib import Path
from PIL import Image
from fastprogress.fastprogress import progress_bar
from lesion_fastai.cache import resize_square
from lesion_fastai.images import load_image

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument('src', type=Path); ap.add_argument('dest', type=Path)
ap.add_argument('--size', type=int, default=128); ap.add_argument('--quality', type=int, default=90)
a = ap.parse_args()
(a.dest/'images').mkdir(parents=True, exist_ok=True)
shutil.copy(a.src/'metadata.csv', a.dest/'metadata.csv')
for p in progress_bar(sorted((a.src/'images').glob('*.jpg'))):
    Image.fromarray(resize_square(load_image(str(p)), a.size)).save(a.dest/'images'/p.name, quality=a.quality)
