"""The names a notebook user needs, for `from lesion_fastai.all import *` (written by hand, as fastai's `all` modules are):
read a dataset, draw folds, make DataLoaders, build and train a teacher and a student with their callbacks, score them,
export the student for phones, predict with the exported files or the shipped student, and explain. Generic helpers and constants stay in their modules."""
from .data import read_lesions, read_isic2024, read_image_folder, find_shared, LesionData
from .sources import read_sources, combine_sources
from .specs import DatasetSpec
from .synth import default_dataset
from .splits import add_folds
from .datablock import lesion_dataloaders, lesion_test_dl
from .models import teacher_learner, student_learner, read_at, save_bundle, load_bundle
from .distill import DistillationCallback, FeatureDistillCallback
from .degrade import PhoneDegradeCallback
from .callbacks import FastTrainCallback, ProgressiveResizeCallback, TrainClockCallback, EpochCheckpointCallback, ValidEveryCallback
from .train import fit_learner, train_model, predict_logits
from .metrics import partial_auc, roc_auc, evaluate, paired_diff_ci
from .config import RunConfig, RECIPES
from .pipeline import run_pipeline
from .run import leave_one_source_out
from .export import export_student
from .predict import Predictor, pretrained_student
from .explain import TriageApp, gradcam

__all__ = ['read_lesions', 'read_isic2024', 'read_image_folder', 'read_sources', 'combine_sources', 'find_shared', 'LesionData', 'DatasetSpec',
           'default_dataset', 'add_folds', 'lesion_dataloaders', 'lesion_test_dl', 'teacher_learner', 'student_learner', 'read_at',
           'save_bundle', 'load_bundle', 'DistillationCallback', 'FeatureDistillCallback', 'PhoneDegradeCallback',
           'FastTrainCallback', 'ProgressiveResizeCallback', 'TrainClockCallback', 'EpochCheckpointCallback',
           'ValidEveryCallback', 'fit_learner', 'train_model', 'predict_logits', 'partial_auc', 'roc_auc', 'evaluate',
           'paired_diff_ci', 'RunConfig', 'RECIPES', 'run_pipeline', 'leave_one_source_out', 'export_student', 'Predictor',
           'pretrained_student', 'TriageApp', 'gradcam']
