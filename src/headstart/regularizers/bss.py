"""Batch Spectral Shrinkage (BSS).

Chen, Wang, Fu, Long & Wang, "Catastrophic Forgetting Meets Negative Transfer: Batch Spectral
Shrinkage for Safe Transfer Learning", NeurIPS 2019.

Fine-tuning on little data lets the directions of the feature space that the target task does not
need (the small singular values of a batch's feature matrix) grow into spurious, transfer-hurting
components. BSS shrinks them:

.. math::

    L_{bss}(F) = \\sum_{i=1}^{k} \\sigma_{-i}^2(F), \\qquad F = U \\Sigma V^\\top,

where ``F = outputs.features`` is the ``(b, d)`` pooled feature matrix of the batch and
:math:`\\sigma_{-i}` its ``i``-th smallest singular value (there are ``min(b, d)`` of them).
The paper uses ``k = 1`` and weight :math:`\\eta = 0.001`.

Shapes: features ``(b, d)`` -> singular values ``(min(b, d),)`` -> scalar. Gradients flow to the
features (hence to whatever produced them); the parameters are not touched directly. The SVD is
done in float32 (float64 for float64 inputs).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..terms import LossTerm, StepOutputs


def smallest_singular_values_sq(features: torch.Tensor, k: int) -> torch.Tensor:
    """Sum of squares of the ``k`` smallest singular values of ``features`` ``(b, d)``."""
    if features.dim() != 2:
        raise ConfigError(f"BSS needs a (batch, dim) feature matrix, got shape {tuple(features.shape)}")
    matrix = features if features.dtype == torch.float64 else features.float()
    values = torch.linalg.svdvals(matrix)  # descending, (min(b, d),)
    k = min(k, values.numel())
    return (values[values.numel() - k:] ** 2).sum()


class BatchSpectralShrinkage(LossTerm):
    """``sum_{i<=k} sigma_{-i}(features)^2``; options: ``k`` (how many smallest singular values)."""

    name = "bss"

    def __init__(self, weight: float = 0.001, *, k: int = 1):
        super().__init__(weight)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"bss k must be a positive integer (how many smallest singular values), got {k!r}")
        self.k = k

    def forward(self, outputs: StepOutputs, model=None) -> torch.Tensor:
        return smallest_singular_values_sq(outputs.features, self.k)
