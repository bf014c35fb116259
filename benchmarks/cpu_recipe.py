"""A fast CPU recipe for the plain (not distilled) image-only student on HAM10000, on this machine's cores.

Trains the student exactly as the pipeline does (`train_model`, phone degradations on, ImageNet weights, the
batched loader, channels-last), with a given budget: image size, frozen + unfrozen epochs, learning rate and
optional progressive resizing. Folds are the HAM10000 benchmark's (5 grouped folds, seed 0, fold 0 held out).
Choose a recipe with `--valid-fold 1` (or 2, 3, 4): train on the other pool folds, score that fold. Then confirm
the chosen one once with `--valid-fold 0`: train on the whole pool, score the holdout. Prints pAUC, AUC, training
seconds (without validation) and the total, and appends a line to --log. Not a test.

Usage: python benchmarks/cpu_recipe.py --data ../shared/data/ham10000 --valid-fold 1 --epochs 5 [--resize-from 96]
       [--lr 2e-3] [--bs 64] [--pos-weight 3] [--num-workers 0] [--freeze-epochs 1] [--size 128] [--seed 0] [--log benchmarks/results/cpu_recipe.jsonl]"""
import argparse, json, time, tempfile
from pathlib import Path
import numpy as np, torch
from sklearn.metrics import roc_auc_score
from lesion_fastai.data import read_lesions
from lesion_fastai.splits import add_folds
from lesion_fastai.cache import ImageCache
from lesion_fastai.train import train_model
from lesion_fastai.callbacks import TrainClockCallback
from lesion_fastai.metrics import partial_auc
from common import ham10000, train_args

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True); ap.add_argument('--valid-fold', type=int, default=1)
    train_args(ap, size=128, bs=64)
    train_args(ap, epochs=5, freeze_epochs=1)
    train_args(ap, lr=2e-3, resize_from=None)
    train_args(ap, degrade_p=0.5, seed=0)
    train_args(ap, pos_weight=None, num_workers=0)
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--cache', default='.cache')
    ap.add_argument('--log', default='benchmarks/results/cpu_recipe.jsonl')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = ham10000(a.data)
    data = data if a.valid_fold == 0 else data.subset((data.df.fold != 0).to_numpy())   # model selection never sees the holdout
    cache = ImageCache.build(data.df.image_ref, a.size, a.cache, ids=data.ids, progress=False)
    clock = TrainClockCallback(); t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        learn, logits = train_model(data, a.valid_fold, 'student', size=a.size, bs=a.bs, epochs=a.epochs,
                                    freeze_epochs=a.freeze_epochs, lr=a.lr, seed=a.seed, cache=cache, path=tmp,
                                    degrade_p=a.degrade_p, resize_from=a.resize_from, pos_weight=a.pos_weight, cbs=[clock],
                                    num_workers=a.num_workers)
    total = time.time() - t0
    y = data.df[data.spec.target_col][data.df.fold == a.valid_fold].to_numpy()
    res = dict(valid_fold=a.valid_fold, size=a.size, freeze_epochs=a.freeze_epochs, epochs=a.epochs, lr=a.lr,
               resize_from=a.resize_from, degrade_p=a.degrade_p, pos_weight=a.pos_weight, bs=a.bs, seed=a.seed, threads=a.threads, num_workers=a.num_workers,
               device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU',
               pauc=round(partial_auc(y, logits.ravel()), 4), auc=round(roc_auc_score(y, logits.ravel()), 4),
               train_s=round(clock.seconds['train']), valid_s=round(clock.seconds['valid']), total_s=round(total),
               train_img_s=round(clock.rates()['train'], 1))
    print(json.dumps(res))
    with open(a.log, 'a') as f: f.write(json.dumps(res) + '\n')

if __name__ == '__main__': main()
