r"""LEEP on headless backbones: N-LEEP's Gaussian-mixture pseudo-source classes.

Paper: Cuong V. Nguyen, Tal Hassner, Matthias Seeger, Cedric Archambeau, "LEEP: A New Measure to
Evaluate Transferability of Learned Representations", ICML 2020. Reference code: TLlib
``tllib/ranking/leep.py``. This is an independent implementation.

LEEP needs the *source* classifier's probabilities ``theta(x_i)`` over source classes ``z``.
headstart's backbones are headless (no source head), so this module uses the standard workaround
of N-LEEP (Yandong Li, Xuhui Jia, Ruoxin Sang, Yukun Zhu, Bradley Green, Liqiang Wang, Boqing
Gong, "Ranking Neural Checkpoints", CVPR 2021): the features ``(n, d)`` are reduced by PCA to
``min(d, 64)`` dimensions and a Gaussian mixture with ``min(5 k, n / 2)`` components is fitted;
its posterior over components is ``theta`` ``(n, m)`` (see ``_clustering.py``; fixed
``random_state``, so deterministic). With ``theta`` from a real source head, call
:func:`leep_from_probabilities` directly.

Given ``theta`` ``(n, m)`` and target labels ``y`` ``(n,)`` in ``0..k-1``:

    P(y, z)  = 1/n sum_i theta_iz 1[y_i = y]                 empirical joint, (k, m)
    P(y | z) = P(y, z) / sum_y' P(y', z)                     (k, m)
    LEEP     = 1/n sum_i log( sum_z P(y_i | z) theta_iz )    the expected empirical prediction's
                                                              log-likelihood of the true label

LEEP is ``<= 0``; higher (closer to 0) is better. With hard, label-pure clusters it is 0; with
uninformative ``theta`` it is ``sum_y P(y) log P(y)`` (minus the label entropy).
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ._checks import check_features_labels, one_hot
from ._clustering import soft_clusters


def leep_from_probabilities(probabilities, labels) -> float:
    """LEEP from source-class probabilities ``(n, m)`` (rows summing to 1) and labels ``(n,)``."""
    theta, encoded, k = check_features_labels(probabilities, labels, "leep")
    if np.any(theta < 0) or not np.allclose(theta.sum(axis=1), 1.0, atol=1e-6):
        row = int(np.flatnonzero((theta < 0).any(axis=1) | ~np.isclose(theta.sum(axis=1), 1.0, atol=1e-6))[0])
        values = theta[row]
        raise DataError(f"leep: row {row} of the source probabilities is not a probability vector (sum "
                        f"{values.sum():.6g}, min {values.min():.6g}); pass softmax outputs: rows >= 0 "
                        f"that sum to 1")
    joint = one_hot(encoded, k).T @ theta / len(theta)  # (k, m)
    marginal = joint.sum(axis=0)  # (m,)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)  # P(y | z)
    expected = np.sum(theta * conditional[encoded], axis=1)  # (n,): sum_z P(y_i | z) theta_iz
    return float(np.mean(np.log(np.maximum(expected, 1e-300))))


def leep_score(features, labels, *, random_state: int = 0) -> float:
    """N-LEEP of ``features`` ``(n, d)`` for ``labels`` ``(n,)``: LEEP with GMM pseudo-source classes."""
    matrix, encoded, k = check_features_labels(features, labels, "leep")
    theta = soft_clusters(matrix, k, random_state=random_state)
    return leep_from_probabilities(theta, encoded)
