"""``backbone="precomputed"``: the inputs already are feature vectors (n, d).

For users who bring their own embeddings, and for scikit-learn's estimator checks, which feed
plain numeric matrices. It has one layer group with no parameters, so every strategy still runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .base import Backbone, LayerGroup
from .info import ModelInfo


class PrecomputedBackbone(Backbone):
    def __init__(self, feature_dim: int):
        info = ModelInfo(
            name="precomputed",
            modality="features",
            architecture="identity",
            license="n/a",
            feature_dim=int(feature_dim),
            params_millions=0.0,
            size_mb=0.0,
            description="the inputs are precomputed feature vectors",
            finetune_lr=1e-3,
        )
        super().__init__(info, pretrained=True)
        self.identity = nn.Identity()
        self._groups = [LayerGroup("input", [self.identity], self.identity)]

    def preprocess_signature(self) -> dict:
        return {"feature_dim": self.feature_dim}

    def preprocess(self, items: Sequence, *, train: bool = False) -> dict[str, torch.Tensor]:
        return {"features": torch.as_tensor(np.asarray(items, dtype=np.float32))}

    def _forward_final(self, batch):
        return self.identity(batch["features"])
