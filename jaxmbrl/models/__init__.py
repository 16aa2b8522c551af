"""Learned dynamics models: a probabilistic MLP ensemble, its normaliser, training, checkpoints.

This layer knows nothing of planners; the rollouts layer turns :func:`predict_grouped` (or
:func:`sample_grouped`) into a dynamics step.
"""

from jaxmbrl.models import checkpoint, ensemble, normalizer, training
from jaxmbrl.models.checkpoint import load, save
from jaxmbrl.models.ensemble import (
    EnsembleConfig,
    EnsembleState,
    disagreement,
    init,
    predict,
    predict_grouped,
    sample,
    sample_grouped,
)
from jaxmbrl.models.normalizer import NormalizerState
from jaxmbrl.models.spec import ModelSpec
from jaxmbrl.models.training import TrainConfig, TrainLog, evaluate, train

__all__ = [
    "EnsembleConfig",
    "EnsembleState",
    "ModelSpec",
    "NormalizerState",
    "TrainConfig",
    "TrainLog",
    "checkpoint",
    "disagreement",
    "ensemble",
    "evaluate",
    "init",
    "load",
    "normalizer",
    "predict",
    "predict_grouped",
    "sample",
    "sample_grouped",
    "save",
    "train",
    "training",
]
