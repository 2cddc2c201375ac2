"""Regularizers against overfitting small data when fine-tuning: one module per method, one registry.

Each is a :class:`headstart.terms.LossTerm`; ``REGULARIZERS.get(name)(weight=..., **options)``
builds one, and the training loop adds ``weight * term(outputs, model)`` to the cross-entropy.

- ``l2_sp``: decay towards the pretrained weights (Li, Grandvalet & Davoine 2018).
- ``delta``: attention-weighted feature maps kept close to the pretrained backbone's (Li et al. 2019).
- ``bss``: shrink the smallest singular values of the batch's features (Chen et al. 2019).
- ``lwf``: LwF-style distillation of the pretrained backbone's pooled features (Li & Hoiem 2016).
"""

from __future__ import annotations

from ..registry import Registry
from ..terms import LossTerm
from .bss import BatchSpectralShrinkage
from .delta import DELTA
from .l2_sp import L2SP
from .lwf import FeatureDistillation

REGULARIZERS: Registry[type[LossTerm]] = Registry("regularizer")
for _regularizer in (L2SP, DELTA, BatchSpectralShrinkage, FeatureDistillation):
    REGULARIZERS.register(_regularizer.name, _regularizer)

__all__ = ["REGULARIZERS", "BatchSpectralShrinkage", "DELTA", "FeatureDistillation", "L2SP"]
