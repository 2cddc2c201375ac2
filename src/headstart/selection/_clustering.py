"""Pseudo-source classes for headless backbones: PCA + a Gaussian mixture, as in N-LEEP.

LEEP and NCE were defined for a *source classifier*: LEEP needs its class probabilities
``theta(x)`` and NCE its hard predictions ``z(x)``. headstart's backbones have no source head, so
both use the workaround of N-LEEP (Li et al. 2021, "Ranking neural checkpoints", CVPR): fit a
Gaussian mixture to the (PCA-reduced) features and treat the posterior over mixture components as
the source-class probabilities.

Shapes: features ``(n, d)`` → exact PCA (``_linalg.py``) to ``p <= min(d, 64, n - 1)`` dims
``(n, p)``, divided by one global scale (the mean standard deviation of the components, so ``reg_covar`` means the same
thing whatever the feature scale) → diagonal-covariance GMM with
``m = clip(min(5 k, n // 2), k, distinct rows)`` components → ``theta`` ``(n, m)``, rows summing
to 1. ``random_state`` is fixed, so the result is deterministic.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._linalg import principal_components

MAX_DIM = 64
COMPONENTS_PER_CLASS = 5


def n_components(n: int, k: int, distinct: int) -> int:
    """Number of mixture components for ``n`` samples, ``k`` classes and ``distinct`` unique rows."""
    return int(max(1, min(max(k, min(COMPONENTS_PER_CLASS * k, n // 2)), distinct)))


def soft_clusters(features: np.ndarray, k: int, *, random_state: int = 0) -> np.ndarray:
    """Posterior over GMM components, ``(n, m)`` float64; ``features`` must be finite ``(n, d)``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    n, d = features.shape
    distinct = len(np.unique(features, axis=0))
    centered = features - features.mean(axis=0)
    if distinct < 2 or not np.any(centered):
        return np.ones((n, 1))  # every row is the same point: one cluster holds everything
    dims = max(1, min(d, MAX_DIM, n - 1))
    reduced = principal_components(centered, dims)
    scale = float(np.sqrt(np.mean(reduced.var(axis=0))))
    reduced = reduced / scale if scale > 0 else reduced
    m = n_components(n, k, distinct)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm = GaussianMixture(n_components=m, covariance_type="diag", reg_covar=1e-4, max_iter=200,
                              n_init=1, init_params="kmeans", random_state=random_state)
        theta = gmm.fit(reduced).predict_proba(reduced)
    return theta


def hard_clusters(features: np.ndarray, k: int, *, random_state: int = 0) -> np.ndarray:
    """The most probable GMM component of each row, ``(n,)`` int64 (argmax of :func:`soft_clusters`)."""
    return soft_clusters(features, k, random_state=random_state).argmax(axis=1).astype(np.int64)
