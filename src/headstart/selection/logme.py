r"""LogME: the log of the maximum Bayesian evidence of a linear model on the features.

Paper: Kaichao You, Yong Liu, Jianmin Wang, Mingsheng Long, "LogME: Practical Assessment of
Pre-trained Models for Transfer Learning", ICML 2021 (reference code: github.com/thuml/LogME).
This is an independent implementation of the same mathematics.

Model, per class ``c`` with target ``y = 1[label == c]`` ``(n,)`` (one-hot columns):

    w ~ N(0, alpha^-1 I_d),    y | F, w ~ N(F w, beta^-1 I_n),    F the features (n, d)

so the evidence (marginal likelihood) is ``y ~ N(0, beta^-1 I_n + alpha^-1 F F^T)``. With the thin
SVD ``F = U diag(s) V^T`` (rank ``r``; ``sigma = s**2`` the non-zero eigenvalues of ``F^T F``),
``x = U^T y`` ``(r,)`` and ``t = alpha / beta``:

    m        = beta A^-1 F^T y,  A = alpha I + beta F^T F        (posterior mean of w, (d,))
    |m|^2    = sum_j sigma_j x_j^2 / (t + sigma_j)^2
    |y-Fm|^2 = sum_j x_j^2 t^2 / (t + sigma_j)^2 + (|y|^2 - |x|^2)
    log p(y | alpha, beta) = r/2 log alpha + n/2 log beta - 1/2 sum_j log(alpha + beta sigma_j)
                             - beta/2 |y-Fm|^2 - alpha/2 |m|^2 - n/2 log(2 pi)

(``r/2 log alpha``: the ``d - r`` zero eigenvalues of ``F^T F`` cancel ``d/2 log alpha`` down to
``r``, so rank-deficient features are handled exactly.) The evidence is maximised over
``(alpha, beta)`` by MacKay's fixed point

    gamma = sum_j sigma_j / (t + sigma_j),   alpha <- gamma / |m|^2,   beta <- (n - gamma) / |y-Fm|^2

iterated until ``t`` changes by less than 1e-10 relative (the reference code stops at 1e-3 after
at most 11 steps; iterating on costs ``O(r)`` per step). The SVD is done once for all classes
(the "efficient" LogME): each class then costs ``O(n r)`` for ``x`` and ``O(r)`` per iteration.
The SVD is taken from the eigendecomposition of the smaller Gram matrix, ``F F^T`` (n, n) or
``F^T F`` (d, d) (see ``_linalg.py``).

Score = mean over classes of ``log p(y_c | alpha*, beta*) / n`` (per-sample log evidence); higher
is better. Typical values lie in about [-2, 2]; they are comparable across backbones and layers
of any width.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_features_labels, one_hot
from ._linalg import gram_spectrum

MAX_ITERATIONS = 1000
TOLERANCE = 1e-10
_TINY = 1e-300


def max_log_evidence(sigma: np.ndarray, x: np.ndarray, y_norm2: np.ndarray, n: int):
    """Maximise the evidence of each target over its own ``(alpha, beta)``; return ``(log evidence, alpha, beta)``, each ``(k,)``.

    ``sigma`` ``(r,)``: non-zero eigenvalues of ``F^T F``; ``x`` ``(r, k)``: ``U^T y`` per target;
    ``y_norm2`` ``(k,)``: ``|y|^2``. The k fixed-point iterations run side by side (one array step
    for all targets, not k Python loops); a target stops updating once it has converged.
    """
    x2 = x * x  # (r, k)
    outside = np.maximum(y_norm2 - x2.sum(axis=0), 0.0)  # the part of y no feature direction can reach
    floor = _TINY + 1e-12 * np.maximum(y_norm2, _TINY)
    column = sigma[:, None]

    def fit_terms(t):  # t (k,) -> |m|^2, |y - F m|^2, gamma, each (k,)
        shrink = t / (t + column)  # (r, k)
        m2 = np.sum(x2 * (1.0 - shrink) ** 2 / column, axis=0)  # sigma x^2 / (t + sigma)^2
        res2 = np.sum(x2 * shrink**2, axis=0) + outside
        gamma = np.sum(1.0 - shrink, axis=0)  # sigma / (t + sigma)
        return m2, res2, gamma

    k = x.shape[1]
    alpha, beta = np.ones(k), np.ones(k)
    active = np.ones(k, dtype=bool)
    for _ in range(MAX_ITERATIONS):
        t = alpha / beta
        m2, res2, gamma = fit_terms(t)
        alpha = np.where(active, np.maximum(gamma, _TINY) / np.maximum(m2, floor), alpha)
        beta = np.where(active, np.maximum(n - gamma, _TINY) / np.maximum(res2, floor), beta)
        active &= ~(np.abs(alpha / beta - t) <= TOLERANCE * t)
        if not active.any():
            break
    m2, res2, _ = fit_terms(alpha / beta)
    evidence = (len(sigma) / 2 * np.log(alpha) + n / 2 * np.log(beta)
                - 0.5 * np.sum(np.log(alpha[None, :] + beta[None, :] * column), axis=0)
                - beta / 2 * res2 - alpha / 2 * m2 - n / 2 * np.log(2 * np.pi))
    return evidence, alpha, beta


def logme_score(features, labels) -> float:
    """LogME of ``features`` ``(n, d)`` for class ``labels`` ``(n,)``: mean per-sample log evidence."""
    matrix, encoded, k = check_features_labels(features, labels, "logme")
    n = len(matrix)
    targets = one_hot(encoded, k)  # (n, k)
    sigma, u, v = gram_spectrum(matrix)
    if u is not None:
        projected = u.T @ targets  # (r, k)
    else:  # U^T y = diag(1/s) V^T F^T y
        projected = (v.T @ (matrix.T @ targets)) / np.sqrt(sigma)[:, None]
    evidences, _, _ = max_log_evidence(sigma, projected, targets.sum(axis=0).astype(float), n)
    return float(np.mean(evidences / n))
