"""LwF-style self-distillation from the frozen pretrained backbone.

Li & Hoiem, "Learning without Forgetting", ECCV 2016 / TPAMI 2018.

LwF keeps a copy of the original network and, while training the new task, asks the network's
*old-task outputs* to stay close (knowledge distillation, temperature ``T``) to what the copy
predicts on the same new-task inputs. headstart's backbones are headless: there are no old-task
logits to distil. So this term distils the **pooled features** instead — the closest analogue —
between the current backbone and a frozen copy of the pretrained one, on the current batch:

.. math::

    \\Omega = \\frac{1}{b} \\sum_{i=1}^{b} \\frac{1}{d} \\lVert f(x_i; w) - f(x_i; w^0) \\rVert_2^2
    \\quad (\\mathrm{``mse''}) \\qquad\\mathrm{or}\\qquad
    \\Omega = \\frac{1}{b} \\sum_{i} \\left(1 - \\cos(f(x_i; w), f(x_i; w^0))\\right)
    \\quad (\\mathrm{``cosine''}).

Shapes: ``outputs.features`` ``(b, d)`` (current, differentiable), reference ``(b, d)`` from the
frozen copy under ``torch.no_grad`` on ``outputs.batch`` -> scalar.

The frozen copy is made in :meth:`setup` (``copy.deepcopy`` of ``model.backbone``, eval mode, no
gradients; kept out of the term's ``state_dict``), so call :meth:`setup` on the pretrained model.
Default ``weight=1.0`` (LwF's loss balance :math:`\\lambda_o = 1`). The reference runs in eval mode:
while the live backbone trains with BatchNorm batch statistics or dropout, the term is not exactly
0 even at :math:`w = w^0`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..terms import LossTerm, StepOutputs
from ._common import frozen_copy, require_backbone

DISTANCES = ("mse", "cosine")


class FeatureDistillation(LossTerm):
    """Distance between current and pretrained pooled features; option ``distance``: mse|cosine."""

    name = "lwf"

    def __init__(self, weight: float = 1.0, *, distance: str = "mse"):
        super().__init__(weight)
        if distance not in DISTANCES:
            raise ConfigError(f"lwf distance must be one of {', '.join(DISTANCES)}, got {distance!r}")
        self.distance = distance
        self.__dict__["_reference"] = None  # outside the module tree: not trained, not saved

    def setup(self, model) -> None:
        require_backbone(model, "lwf")
        self.__dict__["_reference"] = frozen_copy(model.backbone)

    def teardown(self, model) -> None:
        self.__dict__["_reference"] = None

    def forward(self, outputs: StepOutputs, model) -> torch.Tensor:
        reference = self.__dict__["_reference"]
        if reference is None:
            raise ConfigError("lwf was used before setup(model); the training loop must call setup first")
        with torch.no_grad():
            target = reference(outputs.batch).to(outputs.features.dtype)
        current = outputs.features
        if self.distance == "mse":
            return F.mse_loss(current, target)
        return (1.0 - F.cosine_similarity(current, target, dim=1, eps=1e-8)).mean()
