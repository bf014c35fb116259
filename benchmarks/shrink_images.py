"""Write a copy of an image-folder dataset (`images/` + `metadata.csv`) with every image centre-cropped and resized to
SIZE px and re-encoded as JPEG (quality QUALITY, default 90): small enough to ship to a GPU machine. Usage:
python benchmarks/shrink_images.py SRC DEST [SIZE [QUALITY]]"""
import sys, shutil
from pathlib import Path
from PIL import Image
from fastprogress.fastprogress import progress_bar
from lesion_fastai.cache import resize_square
from lesion_fastai.images import load_image

src, dst = Path(sys.argv[1]), Path(sys.argv[2]); size = int(sys.argv[3]) if len(sys.argv) > 3 else 128
(dst/'images').mkdir(parents=True, exist_ok=True)
shutil.copy(src/'metadata.csv', dst/'metadata.csv')
for p in progress_bar(sorted((src/'images').glob('*.jpg'))):
    Image.fromarray(resize_square(load_image(str(p)), size)).save(dst/'images'/p.name, quality=int(sys.argv[4]) if len(sys.argv) > 4 else 90)
