r"""H-score and its shrinkage-regularised version.

Papers: Yajie Bao, Yang Li, Shao-Lun Huang, Lin Zhang, Lizhong Zheng, Amir Zamir, Leonidas
Guibas, "An Information-Theoretic Approach to Transferability in Task Transfer Learning", ICIP
2019 (H-score); Shibal Ibrahim, Natalia Ponomareva, Rahul Mazumder, "Newer is not always better:
Rethinking transferability metrics, their peculiarities, stability and performance", ECML-PKDD
2022 (the shrinkage H-score, ``H_alpha``). Reference code: TLlib ``tllib/ranking/hscore.py``.
This is an independent implementation.

With features ``f`` ``(n, d)``, class means ``mu_c`` ``(d,)``, class frequencies ``p_c`` and the
overall mean ``mu``:

    cov(f)        = 1/n sum_i (f_i - mu)(f_i - mu)^T                        (d, d)
    cov(E[f|y])   = sum_c p_c (mu_c - mu)(mu_c - mu)^T                      (d, d), rank <= k - 1
    H(f)          = tr(cov(f)^+ cov(E[f|y])) = sum_c p_c (mu_c - mu)^T cov(f)^+ (mu_c - mu)

``cov(f)^+`` is the pseudo-inverse (eigenvalues below 1e-10 of the largest are dropped). Both
covariances use the same ``1/n`` normalisation; the reference code uses ``1/(n-1)`` for both, and
the factor cancels. Both scores come from one eigendecomposition of the smaller Gram matrix of
the centred features (``_linalg.py``): ``d = 1280`` with ``n = 100`` costs a ``(100, 100)`` one.
H lies in ``[0, k - 1]`` (a sum of squared canonical correlations between ``f`` and the one-hot
label); higher is better.

The plain H-score is unstable when ``n`` is not much larger than ``d``: the sample covariance is
then (near) singular and ``H`` saturates at ``k - 1`` for any features. ``H_alpha`` replaces it by
the Ledoit-Wolf shrinkage estimate ``cov_alpha(f) = (1 - alpha) cov(f) + alpha (tr cov(f) / d) I``
(``sklearn.covariance.ledoit_wolf_shrinkage``, the ``alpha`` of ``LedoitWolf``, picked from the
data; ``cov_alpha`` shares the eigenvectors of ``cov(f)``, so it is never formed) and shrinks the
between-class term by the same ``1 - alpha``:

    H_alpha(f) = tr(cov_alpha(f)^-1 (1 - alpha) cov(E[f|y]))
"""

from __future__ import annotations

import numpy as np

from ._checks import check_features_labels, one_hot
from ._linalg import gram_spectrum

RCOND = 1e-10  # eigenvalues of cov(f) below RCOND * the largest are dropped by the pseudo-inverse


def _between_class_coordinates(matrix: np.ndarray, labels: np.ndarray, k: int):
    """``(p (k,), C (k, r), lam (r,), F_c (n, d))``: class frequencies, class means of the centred
    features in the eigenbasis of ``cov(f)``, the non-zero eigenvalues ``lam`` of ``cov(f)``
    (ascending), and the centred features.

    With ``F_c = U diag(s) V^T`` (centred features) ``cov(f) = V diag(s^2 / n) V^T`` and the class
    means ``mu_c = F_c^T 1_c / n_c`` have coordinates ``V^T mu_c = s * (U^T 1_c) / n_c``; they lie
    in the span of ``V``, so the null space of ``cov(f)`` never enters the traces below.
    """
    n = len(matrix)
    centered = matrix - matrix.mean(axis=0)
    indicator = one_hot(labels, k)  # (n, k)
    counts = indicator.sum(axis=0)
    sigma, u, v = gram_spectrum(centered)
    if u is not None:
        coordinates = (indicator.T @ u) * np.sqrt(sigma) / counts[:, None]  # (k, r)
    else:
        coordinates = (indicator.T @ centered / counts[:, None]) @ v  # (k, r)
    return counts / n, coordinates, sigma / n, centered


def h_score(features, labels) -> float:
    """H-score of ``features`` ``(n, d)`` for ``labels`` ``(n,)`` (Bao et al. 2019)."""
    matrix, encoded, k = check_features_labels(features, labels, "hscore")
    p, coordinates, lam, _ = _between_class_coordinates(matrix, encoded, k)
    if not len(lam):
        return 0.0  # constant features: no direction carries anything
    keep = lam > RCOND * lam[-1]
    return float(np.sum(p[:, None] * coordinates[:, keep] ** 2 / lam[keep]))


def regularized_h_score(features, labels) -> float:
    """Shrinkage (Ledoit-Wolf) H-score ``H_alpha`` of ``features`` ``(n, d)`` (Ibrahim et al. 2022)."""
    from sklearn.covariance import ledoit_wolf_shrinkage

    matrix, encoded, k = check_features_labels(features, labels, "regularized_hscore")
    p, coordinates, lam, centered = _between_class_coordinates(matrix, encoded, k)
    if not len(lam):
        return 0.0  # constant features (Ledoit-Wolf would divide by a zero variance)
    alpha = float(ledoit_wolf_shrinkage(centered, assume_centered=True))
    mu = float(np.sum(centered ** 2)) / centered.size  # tr(cov(f)) / d
    shrunk = (1.0 - alpha) * lam + alpha * mu  # eigenvalues of cov_alpha(f) on the span of V
    return float((1.0 - alpha) * np.sum(p[:, None] * coordinates ** 2 / shrunk))
