"""CDAN and CDAN+E: domain-adversarial training conditioned on the classifier's predictions.

Paper: M. Long, Z. Cao, J. Wang and M. I. Jordan, "Conditional Adversarial Domain Adaptation",
NeurIPS 2018, arXiv:1705.10667.

Math. Like DANN (see :mod:`headstart.adapt.dann`: gradient reversal with the same
``lambda(p) = 2/(1+exp(-10 p)) - 1`` from ``outputs.step``/``outputs.total_steps``, BCE with
source = 1, target = 0), but the discriminator sees the features ``f (n, d)`` conditioned on the
softmax predictions ``g = softmax(logits) (n, k)`` (detached, as in the authors' and TLlib's code):

    multilinear map   T(f, g) = vec(g f^T)                          # (n, k d)    when d k <= 4096
    randomized map    T(f, g) = (f R_f) * (g R_g) / sqrt(r)          # (n, r)      when d k  > 4096

``R_f (d, r)``, ``R_g (k, r)`` are fixed standard-normal matrices (``r = 1024``; drawn from
``seed``, kept as buffers so they are saved with the term and a resumed run keeps them). The
gradient reversal acts on ``f`` only.

CDAN+E (``entropy=True``, registered as ``"cdan_e"``) weights each example by
``w = 1 + exp(-H(g))`` (detached), ``H`` the prediction entropy in nats, so ``w`` lies in
``[1 + 1/k, 2]``: confident examples count up to twice as much. The loss is the per-domain
weighted mean ``1/2 [sum_s w BCE / sum_s w + sum_t w BCE / sum_t w]`` (the authors' code also
normalises per domain). Without ``entropy`` every ``w = 1``.

Discriminator: ``in -> h -> h -> 1`` with ReLU, ``h = 1024`` for ``in >= 256`` else
``max(32, 4 in)``; no BatchNorm, no dropout.

Shapes: ``outputs.features (n_s, d)``, ``outputs.logits (n_s, k)`` and the target's
``(n_t, d)``, ``(n_t, k)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..terms import StepOutputs
from ._base import check_positive_int
from ._base import entropy as prediction_entropy
from .dann import AdversarialTerm, DomainDiscriminator, default_hidden, domain_bce, grad_reverse

MULTILINEAR_MAX_DIM = 4096


def entropy_weights(probs: torch.Tensor) -> torch.Tensor:
    """CDAN+E example weights ``1 + exp(-H(p))`` for probabilities ``(n, k) -> (n,)``, in [1, 2]."""
    return 1.0 + torch.exp(-prediction_entropy(probs))


def multilinear_map(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``vec(g f^T)``: ``(n, d), (n, k) -> (n, k d)``."""
    return (g.unsqueeze(2) * f.unsqueeze(1)).flatten(1)


class CDAN(AdversarialTerm):
    """CDAN term. ``CDAN(feature_dim, n_classes, weight=1.0, entropy=False, randomized=None,
    randomized_dim=1024, hidden_dim=None, gamma=10.0, max_coeff=1.0, seed=0)``;
    ``randomized=None`` picks the randomized map when ``feature_dim * n_classes > 4096``.
    """

    name = "cdan"

    def __init__(self, feature_dim: int, n_classes: int, weight: float = 1.0, entropy: bool = False,
                 randomized: bool | None = None, randomized_dim: int = 1024, hidden_dim: int | None = None,
                 gamma: float = 10.0, max_coeff: float = 1.0, seed: int = 0):
        super().__init__(feature_dim, n_classes, weight)
        where = f"adaptation method {self.name!r}"
        self._schedule_options(gamma, max_coeff)
        self.entropy = bool(entropy)
        self.randomized = feature_dim * n_classes > MULTILINEAR_MAX_DIM if randomized is None else bool(randomized)
        if self.randomized:
            r = check_positive_int(randomized_dim, "randomized_dim", where, "the paper uses 1024")
            gen = torch.Generator().manual_seed(int(seed))
            self.register_buffer("rf", torch.randn(feature_dim, r, generator=gen))
            self.register_buffer("rg", torch.randn(n_classes, r, generator=gen))
            in_dim = r
        else:
            in_dim = feature_dim * n_classes
        hidden = default_hidden(in_dim) if hidden_dim is None else check_positive_int(
            hidden_dim, "hidden_dim", where, "e.g. 1024, or None for the default")
        self.discriminator = DomainDiscriminator(in_dim, hidden)

    def condition(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """``T(f, g)``: ``(n, d), (n, k) -> (n, k d)`` or ``(n, r)``."""
        if self.randomized:
            return (f @ self.rf) * (g @ self.rg) / math.sqrt(self.rf.shape[1])
        return multilinear_map(f, g)

    def forward(self, outputs: StepOutputs, model: nn.Module) -> torch.Tensor:
        fs, ft = self.features_pair(outputs)
        gs, gt = self.logits_pair(outputs)
        if gs.shape[0] != fs.shape[0] or gt.shape[0] != ft.shape[0]:
            raise ConfigError(
                f"adaptation method {self.name!r}: features and logits must have the same batch size, got "
                f"source {fs.shape[0]} vs {gs.shape[0]}, target {ft.shape[0]} vs {gt.shape[0]}; "
                f"pass the logits computed from these features"
            )
        coeff = self.coefficient(outputs.step, outputs.total_steps)
        self.last_coeff = coeff
        dtype = self.discriminator[0].weight.dtype
        f = grad_reverse(torch.cat([fs, ft], dim=0).to(dtype), coeff)
        g = F.softmax(torch.cat([gs, gt], dim=0).detach().to(dtype), dim=1)
        logits = self.discriminator(self.condition(f, g))
        ns = fs.shape[0]
        if not self.entropy:
            return domain_bce(logits[:ns], logits[ns:])
        w = entropy_weights(g)
        return domain_bce(logits[:ns], logits[ns:], w[:ns], w[ns:])


class CDANE(CDAN):
    """CDAN+E: :class:`CDAN` with ``entropy=True`` (the other options are the same)."""

    name = "cdan_e"

    def __init__(self, feature_dim: int, n_classes: int, weight: float = 1.0, **options):
        if not options.pop("entropy", True):
            raise ConfigError("adaptation method 'cdan_e' always uses entropy conditioning, got entropy=False; "
                              "use 'cdan' for CDAN without it")
        super().__init__(feature_dim, n_classes, weight, entropy=True, **options)
