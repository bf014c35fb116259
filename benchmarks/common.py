"""What the benchmarks share: the real datasets with the folds every benchmark here uses, and the training options
declared once (their defaults and help come from the library's `RunConfig`, a benchmark only says where it differs)."""
import argparse
import numpy as np
from dataclasses import fields
from fastcore.docments import docments
from lesion_fastai.data import read_lesions, find_shared, LesionData
from lesion_fastai.splits import add_folds
from lesion_fastai.config import RunConfig

def ham10000(path=None, # the HAM10000 folder (images/ + metadata.csv); default: the shared one
             seed:int=0, # seed of the 5 lesion-grouped folds (0 in every benchmark here: fold 0 is the holdout)
             **kwargs, # more `read_lesions` options, e.g. ambiguous='exclude'
            ) -> LesionData:
    "HAM10000 with its 5 lesion-grouped, stratified folds"
    return add_folds(read_lesions(path or find_shared('ham10000'), spec='ham10000', progress=False, **kwargs), 5, seed)

def pad_ufes20(path=None, # the PAD-UFES-20 folder; default: the shared one
               seed:int=0, # seed of the 5 patient-grouped folds
              ) -> LesionData:
    "PAD-UFES-20's smartphone photos with their 5 patient-grouped, stratified folds"
    return add_folds(read_lesions(path or find_shared('pad_ufes20'), spec='pad_ufes20', progress=False), 5, seed)

def train_args(ap:argparse.ArgumentParser, # the benchmark's parser
               **defaults, # the benchmark's own defaults, e.g. size=128, lr=4e-3 (names of `RunConfig` fields)
              ) -> argparse.ArgumentParser:
    "Add the training options named in `defaults` to `ap`, typed and documented as `RunConfig` (and `lesion-run`) has them"
    docs, types = docments(RunConfig), {f.name: f.type for f in fields(RunConfig)}
    for k, v in defaults.items():
        if k not in types: raise ValueError(f"{k!r} is not a RunConfig setting")
        t = {'int': int, 'float': float, 'str': str}.get(str(types[k]).split('|')[0].strip(), type(v) if v is not None else str)
        ap.add_argument(f"--{k.replace('_', '-')}", type=t, default=v, help=f"{docs[k]} (default: {v})")
    return ap

def seeds_mean(metric, # function (y_true, y_score) -> float, e.g. `roc_auc`
              ):
    "`metric` as a function of (y_true, Z) with one score column per seed: its mean over the columns (bootstrap it for the interval of the mean over seeds)"
    return lambda y_true, Z: float(np.mean([metric(y_true, Z[:, k]) for k in range(Z.shape[1])]))
