"""L2-SP: weight decay towards the starting point instead of towards zero.

Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional
Networks", ICML 2018.

Plain weight decay pulls every weight towards 0, which on a small target set erases what the
pretrained backbone knew. L2-SP keeps the pretrained weights :math:`w^0` as the reference for the
backbone parameters :math:`w_S` and decays only the new head :math:`w_{\\bar S}` towards zero:

.. math::

    \\Omega(w) = \\frac{\\alpha}{2} \\lVert w_S - w_S^0 \\rVert_2^2
               + \\frac{\\beta}{2} \\lVert w_{\\bar S} \\rVert_2^2 .

Here :math:`S` is the set of backbone parameters that train when :meth:`setup` runs (frozen groups
have :math:`w = w^0` anyway), snapshotted there as detached copies; :math:`\\bar S` is every
parameter of ``model.head`` (weights and bias). Each tensor keeps its own shape; the sums run over
all entries and give a scalar. The term's ``weight`` multiplies the whole of :math:`\\Omega`.

Defaults: ``weight=1``, ``alpha=0.01``, ``beta=0.01``. The paper picks :math:`\\alpha` on a
validation set (the grid spans 10^-3..1) and keeps :math:`\\beta = 0.01` for the new layer; 0.01
for both is the setting TLlib's examples default to and a safe start for small data — increase
``alpha`` when the target data are few and close to the pretraining data.

The snapshot is taken from the model as it is at :meth:`setup`: call it on the pretrained model
(before loading a resumed checkpoint's weights). It is not part of the term's ``state_dict``.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..terms import LossTerm, StepOutputs
from ._common import require_backbone, trainable_backbone_parameters


def _check_strength(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f"l2_sp {name} must be a non-negative number, got {value!r}")
    return float(value)


class L2SP(LossTerm):
    """``alpha/2 ||w_S - w_S^0||^2 + beta/2 ||w_head||^2``; options ``alpha``, ``beta``."""

    name = "l2_sp"
    batch_free = True  # a distance between weights: the same whichever examples share a batch

    def __init__(self, weight: float = 1.0, *, alpha: float = 0.01, beta: float = 0.01):
        super().__init__(weight)
        self.alpha = _check_strength("alpha", alpha)
        self.beta = _check_strength("beta", beta)
        self._anchors: list[tuple[torch.nn.Parameter, torch.Tensor]] = []

    def setup(self, model) -> None:
        require_backbone(model, "l2_sp")
        self._anchors = [(p, p.detach().clone()) for _, p in trainable_backbone_parameters(model)]

    def teardown(self, model) -> None:
        self._anchors = []

    def starting_point_distance(self) -> torch.Tensor:
        """``||w_S - w_S^0||^2`` summed over the snapshotted tensors."""
        total = None
        for param, anchor in self._anchors:
            part = (param - anchor.to(param.device)).pow(2).sum()
            total = part if total is None else total + part
        return total

    def forward(self, outputs: StepOutputs, model) -> torch.Tensor:
        head_params = list(model.head.parameters())
        device = head_params[0].device if head_params else outputs.logits.device
        loss = torch.zeros((), device=device)
        distance = self.starting_point_distance()
        if distance is not None and self.alpha:
            loss = loss + 0.5 * self.alpha * distance
        if self.beta:
            for param in head_params:
                loss = loss + 0.5 * self.beta * param.pow(2).sum()
        return loss
