r"""NCE: negative conditional entropy of the target labels given (pseudo-)source classes.

Paper: Anh T. Tran, Cuong V. Nguyen, Tal Hassner, "Transferability and Hardness of Supervised
Classification Tasks", ICCV 2019. Reference code: TLlib ``tllib/ranking/nce.py``. This is an
independent implementation.

NCE needs a hard source label ``z_i`` per example. headstart's backbones are headless, so, as for
LEEP (see ``leep.py``), ``z_i`` is the most probable component of a Gaussian mixture fitted to the
PCA-reduced features (the N-LEEP clustering of ``_clustering.py``, argmax; fixed
``random_state``). With labels from a real source head, call :func:`nce_from_assignments`.

Given ``z`` ``(n,)`` in ``0..m-1`` and ``y`` ``(n,)`` in ``0..k-1``:

    P(y, z)  = 1/n #{i : y_i = y, z_i = z}                   (k, m)
    P(z)     = sum_y P(y, z)                                 (m,)
    NCE      = -H(Y | Z) = sum_{y,z} P(y, z) log( P(y, z) / P(z) )

NCE is ``<= 0``; higher is better. It is 0 when every cluster holds one class, and
``-H(Y) = -log k`` for balanced labels independent of the clusters (up to the small downward bias
of a plug-in entropy, about ``(k - 1) m / (2 n)``).
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ._checks import check_features_labels
from ._clustering import hard_clusters


def nce_from_assignments(assignments, labels) -> float:
    """``-H(Y | Z)`` from hard source labels ``assignments`` ``(n,)`` and target ``labels`` ``(n,)``."""
    z = np.asarray(assignments)
    _, encoded, k = check_features_labels(np.zeros((len(z), 1)), labels, "nce")
    if z.ndim != 1 or len(z) != len(encoded):
        raise DataError(f"nce: assignments must be 1-D with one entry per label, got shape {z.shape} for "
                        f"{len(encoded)} labels; pass the source class index of each example")
    _, z = np.unique(z, return_inverse=True)
    z = z.reshape(-1)
    joint = np.zeros((k, int(z.max()) + 1))
    np.add.at(joint, (encoded, z), 1.0)
    joint /= len(z)
    marginal = joint.sum(axis=0, keepdims=True)  # (1, m)
    nonzero = joint > 0
    ratio = joint[nonzero] / np.broadcast_to(marginal, joint.shape)[nonzero]
    return float(np.sum(joint[nonzero] * np.log(ratio)))


def nce_score(features, labels, *, random_state: int = 0) -> float:
    """NCE of ``features`` ``(n, d)`` for ``labels`` ``(n,)``, with GMM clusters as source classes."""
    matrix, encoded, k = check_features_labels(features, labels, "nce")
    return nce_from_assignments(hard_clusters(matrix, k, random_state=random_state), encoded)
