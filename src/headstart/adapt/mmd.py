"""Multi-kernel MMD (MK-MMD) between source and target features, as in DAN.

Paper: M. Long, Y. Cao, J. Wang and M. I. Jordan, "Learning Transferable Features with Deep
Adaptation Networks", ICML 2015, arXiv:1502.02791. Kernel two-sample test: A. Gretton et al.,
"A Kernel Two-Sample Test", JMLR 2012.

Math. With ``z`` the concatenation of source ``(n_s, d)`` and target ``(n_t, d)`` features and
squared distances ``D_ij = ||z_i - z_j||^2``, the kernel is an equal-weight mixture of ``m``
Gaussians whose bandwidths are multiples of the batch's mean squared distance (a detached
constant, like TLlib's ``GaussianKernel``):

    s^2  = mean_{i != j} D_ij                          # base bandwidth, no gradient
    k(x, y) = (1/m) sum_u exp(-||x - y||^2 / (2 a_u s^2)),  a_u in {2^-2, 2^-1, 1, 2, 4} (default)

DAN learns the mixture weights ``beta_u``; here they are fixed and equal. Two estimators of
``MMD^2 = E k(s, s') + E k(t, t') - 2 E k(s, t)``:

* ``estimator="biased"`` (default): the V-statistic over all pairs, diagonals included,
  ``mean K_ss + mean K_tt - 2 mean K_st``. Always >= 0, exactly 0 when the two batches are the
  same sample, and it allows ``n_s != n_t``. Cost O((n_s + n_t)^2 d).
* ``estimator="linear"``: DAN's linear-time unbiased estimate (Gretton et al. 2012, sec. 6) over
  ``q = min(n_s, n_t) // 2`` disjoint quadruples ``(s, s', t, t')``:
  ``(1/q) sum [k(s,s') + k(t,t') - k(s,t') - k(s',t)]``; its bandwidth uses the mean of the four
  squared distances per quadruple. Unbiased, so it can be negative; needs ``n_s, n_t >= 2``.

Shapes: ``outputs.features (n_s, d)``, ``outputs.target_features (n_t, d)``; logits unused.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..terms import StepOutputs
from ._base import AdaptationTerm, check_number

DEFAULT_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _kernel(sq_dist: torch.Tensor, base: torch.Tensor, multipliers: Sequence[float]) -> torch.Tensor:
    base = base.detach().clamp_min(1e-12)
    return sum(torch.exp(-sq_dist / (2.0 * a * base)) for a in multipliers) / len(multipliers)


def mk_mmd(source: torch.Tensor, target: torch.Tensor,
           multipliers: Sequence[float] = DEFAULT_MULTIPLIERS, estimator: str = "biased") -> torch.Tensor:
    """MK-MMD^2 of ``(n_s, d)`` and ``(n_t, d)`` samples (see the module docstring)."""
    if estimator == "biased":
        z = torch.cat([source, target], dim=0)
        n, ns = z.shape[0], source.shape[0]
        norms = z.pow(2).sum(1)
        sq = (norms[:, None] + norms[None, :] - 2.0 * z @ z.T).clamp_min(0.0)   # (n, n), O(n^2) memory
        sq = sq * (1.0 - torch.eye(n, device=z.device, dtype=z.dtype))         # exact zeros on the diagonal
        base = sq.sum() / max(n * (n - 1), 1)
        k = _kernel(sq, base, multipliers)
        return k[:ns, :ns].mean() + k[ns:, ns:].mean() - 2.0 * k[:ns, ns:].mean()
    # linear-time: quadruples (s_2i, s_2i+1, t_2i, t_2i+1)
    q = min(source.shape[0], target.shape[0]) // 2
    s1, s2 = source[0:2 * q:2], source[1:2 * q:2]
    t1, t2 = target[0:2 * q:2], target[1:2 * q:2]
    d_ss, d_tt = (s1 - s2).pow(2).sum(1), (t1 - t2).pow(2).sum(1)
    d_st, d_ts = (s1 - t2).pow(2).sum(1), (s2 - t1).pow(2).sum(1)
    base = (d_ss + d_tt + d_st + d_ts).mean() / 4.0
    k = [_kernel(d, base, multipliers) for d in (d_ss, d_tt, d_st, d_ts)]
    return (k[0] + k[1] - k[2] - k[3]).mean()


class MKMMD(AdaptationTerm):
    """DAN's MK-MMD term.

    ``MKMMD(feature_dim, n_classes, weight=1.0, multipliers=(0.25, 0.5, 1, 2, 4),
    estimator="biased")``; ``estimator`` is ``"biased"`` or ``"linear"``.
    """

    name = "mmd"

    def __init__(self, feature_dim: int, n_classes: int, weight: float = 1.0,
                 multipliers: Sequence[float] = DEFAULT_MULTIPLIERS, estimator: str = "biased"):
        super().__init__(feature_dim, n_classes, weight)
        where = "adaptation method 'mmd'"
        if estimator not in ("biased", "linear"):
            raise ConfigError(f"{where}: estimator must be 'biased' or 'linear', got {estimator!r}; "
                              "'biased' is the all-pairs estimate, 'linear' DAN's linear-time one")
        try:
            multipliers = tuple(multipliers)
        except TypeError:
            multipliers = ()
        if not multipliers:
            raise ConfigError(f"{where}: multipliers must be a non-empty sequence of positive numbers, "
                              f"got {multipliers!r}; e.g. (0.25, 0.5, 1, 2, 4)")
        self.multipliers = tuple(check_number(a, "each bandwidth multiplier", where, low=0.0, low_open=True,
                                              fix="e.g. (0.25, 0.5, 1, 2, 4)") for a in multipliers)
        self.estimator = estimator

    def forward(self, outputs: StepOutputs, model: nn.Module) -> torch.Tensor:
        fs, ft = self.features_pair(outputs)
        if self.estimator == "linear" and min(fs.shape[0], ft.shape[0]) < 2:
            raise DataError(
                f"adaptation method 'mmd' (estimator='linear') needs at least 2 examples per domain, "
                f"got {fs.shape[0]} source and {ft.shape[0]} target at step {outputs.step}; "
                f"use larger batches or estimator='biased'"
            )
        return mk_mmd(fs.float(), ft.float(), self.multipliers, self.estimator)
