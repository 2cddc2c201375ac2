"""Unsupervised validators: choose an adaptation method and its weight without target labels.

Each takes NumPy arrays and returns a float. Compare candidates (methods, weights, checkpoints)
trained on the same data; the values are only meaningful relative to each other.

* :func:`information_maximization` — higher is better.
  ``IM = H(mean_i p_i) - mean_i H(p_i)`` for target probabilities ``p (n, k)``: diverse
  (high entropy of the mean prediction) and confident (low mean entropy) predictions score high;
  the range is ``[0, log k]``. From the information-maximization objective (Gomes, Krause and
  Perona, NeurIPS 2010; SHOT, Liang et al., ICML 2020), used as a validator by Musgrave et al.,
  "Benchmarking Validation Methods for Unsupervised Domain Adaptation", 2021.
* :func:`snd` — Soft Neighborhood Density, higher is better. K. Saito, D. Kim, P. Teterwak,
  S. Sclaroff, T. Darrell and K. Saenko, "Tune it the Right Way: Unsupervised Validation of Domain
  Adaptation via Soft Neighborhood Density", ICCV 2021, arXiv:2108.10860.
* :func:`dev` — Deep Embedded Validation, lower is better (it estimates the target risk).
  K. You, X. Wang, M. Long and M. I. Jordan, "Towards Accurate Model Selection in Deep
  Unsupervised Domain Adaptation", ICML 2019.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError


def _matrix(x, what: str, where: str, min_rows: int = 1) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {what} must be a numeric array, got {type(x).__name__}") from None
    if arr.ndim != 2 or arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise DataError(f"{where}: {what} must be a 2-D array (n, c) with n >= {min_rows}, got shape "
                        f"{arr.shape}; stack one row per target example")
    if not np.isfinite(arr).all():
        raise DataError(f"{where}: {what} contains NaN or infinite values; check the model's outputs")
    return arr


def _probabilities(p, where: str, min_rows: int = 1) -> np.ndarray:
    probs = _matrix(p, "target_probs", where, min_rows)
    if (probs < -1e-6).any() or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise DataError(f"{where}: target_probs must be probabilities (non-negative rows summing to 1), got "
                        f"row sums in [{probs.sum(1).min():.4g}, {probs.sum(1).max():.4g}]; pass "
                        f"softmax(logits), not logits")
    return np.clip(probs, 0.0, 1.0)


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=axis)


def information_maximization(target_probs: np.ndarray) -> float:
    """``IM = H(mean_i p_i) - (1/n) sum_i H(p_i)`` (nats) of target probabilities ``(n, k)``.

    Higher is better: 0 for collapsed (every example the same prediction) or uniform predictions,
    ``log k`` for one-hot predictions spread evenly over the ``k`` classes.
    """
    p = _probabilities(target_probs, "information_maximization")
    return float(_entropy(p.mean(axis=0)) - _entropy(p, axis=1).mean())


def snd(target_features_or_probs: np.ndarray, temperature: float = 0.05) -> float:
    """Soft Neighborhood Density of target predictions (or features) ``X (n, c)``, ``n >= 2``.

    ``x_i <- x_i / ||x_i||``; ``S_ij = x_i . x_j / T`` for ``i != j`` (the diagonal is set to
    ``-1/T`` as in the authors' code, which removes self-similarity); ``P_i = softmax_j(S_ij)``;
    ``SND = (1/n) sum_i H(P_i)``. Higher is better: a point with many close neighbours spreads its
    soft-neighbourhood distribution over them (high entropy), one in a sparse region puts it on a
    single neighbour. The paper applies it to softmax predictions with ``T = 0.05``. It is maximal
    (``log(n - 1)``) when all points coincide, so it does not detect collapse to one class alone;
    check :func:`information_maximization` or the predicted class balance alongside.
    """
    if not np.isfinite(temperature) or temperature <= 0:
        raise ConfigError(f"snd: temperature must be a positive number, got {temperature!r}; the paper uses 0.05")
    x = _matrix(target_features_or_probs, "target_features_or_probs", "snd", min_rows=2)
    x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    s = x @ x.T / temperature
    np.fill_diagonal(s, -1.0 / temperature)
    s = s - s.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    return float(_entropy(p, axis=1).mean())


def dev(source_val_features: np.ndarray, source_val_losses: np.ndarray, target_features: np.ndarray,
        *, source_train_features: np.ndarray | None = None, domain_classifier=None,
        random_state: int | None = 0) -> float:
    """Deep Embedded Validation risk (lower is better) of a model, from its per-example losses
    ``l_i (n_v,)`` on labelled source validation data and the features ``(n_v, d)`` / ``(n_t, d)``.

    A domain classifier (default ``LogisticRegression(max_iter=1000)``) is fit to tell source
    (label 1) from target (label 0) features. The paper fits it on source *training* features and
    target features and applies it to the validation features: pass ``source_train_features`` for
    that; by default it is fit on the validation features themselves. Importance weights, with the
    class-prior correction ``n_s / n_t`` (``n_s`` the source examples the classifier was fit on),
    and the control-variate estimate of the target risk:

        w_i = (n_s / n_t) * P(target | x_i) / P(source | x_i)
        L_i = w_i l_i
        eta = -Cov(L, w) / Var(w)                 # 0 when Var(w) = 0; sample (co)variances
        risk = mean(L) + eta * mean(w) - eta

    When source and target are identically distributed, ``w ~ 1`` and the risk is ~``mean(l)``.
    """
    fv = _matrix(source_val_features, "source_val_features", "dev", min_rows=2)
    ft = _matrix(target_features, "target_features", "dev")
    losses = np.asarray(source_val_losses, dtype=np.float64).reshape(-1) if np.ndim(source_val_losses) else None
    if losses is None or losses.shape[0] != fv.shape[0] or not np.isfinite(losses).all():
        raise DataError(f"dev: source_val_losses must be {fv.shape[0]} finite per-example losses (one per row "
                        f"of source_val_features), got shape {np.shape(source_val_losses)}; pass the "
                        f"unreduced losses, e.g. cross_entropy(..., reduction='none')")
    weights = importance_weights(fv, ft, source_train_features=source_train_features,
                                 domain_classifier=domain_classifier, random_state=random_state)
    return dev_risk(weights, losses)


def importance_weights(source_val_features: np.ndarray, target_features: np.ndarray, *,
                       source_train_features: np.ndarray | None = None, domain_classifier=None,
                       random_state: int | None = 0) -> np.ndarray:
    """DEV's density ratios ``w (n_v,)`` of the source validation rows: how target-like each is.

    Computed once, they let :func:`dev_risk` score many candidates (methods, weights) on the same
    validation rows: ``adapt="auto"`` takes them in the source-only model's feature space.
    """
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression

    fv = _matrix(source_val_features, "source_val_features", "dev", min_rows=2)
    ft = _matrix(target_features, "target_features", "dev")
    fs = fv if source_train_features is None else _matrix(source_train_features, "source_train_features", "dev")
    if fs.shape[1] != fv.shape[1] or ft.shape[1] != fv.shape[1]:
        raise DataError(f"dev: source and target features must have the same width, got "
                        f"{fv.shape[1]} (source_val), {fs.shape[1]} (source_train), {ft.shape[1]} (target); "
                        f"pass features from the same layer")
    clf = LogisticRegression(max_iter=1000, random_state=random_state) if domain_classifier is None \
        else clone(domain_classifier)
    clf.fit(np.concatenate([fs, ft]), np.concatenate([np.ones(len(fs)), np.zeros(len(ft))]))
    proba = clf.predict_proba(fv)
    classes = list(clf.classes_)
    p_source = np.clip(proba[:, classes.index(1.0)], 1e-12, 1.0)
    p_target = np.clip(proba[:, classes.index(0.0)], 1e-12, 1.0)
    return (len(fs) / len(ft)) * p_target / p_source


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size of importance weights ``w (n,)``: ``(sum w)^2 / sum w^2``.

    ``n`` when every weight is equal, 1 when one row carries all the weight. DEV's estimate rests on
    that many source validation rows: when the domain classifier separates source from target
    almost perfectly, a handful of target-like rows carry it (Kong 1992; Owen, "Monte Carlo theory,
    methods and examples", §9.3).
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) == 0 or not np.isfinite(w).all() or (w < 0).any():
        raise DataError(f"effective_sample_size: need non-negative finite weights, got {len(w)} weights"
                        + (f" with min {w.min():g}" if len(w) else "") + "; pass importance_weights(...)'s output")
    total = float((w ** 2).sum())
    return float(w.sum() ** 2 / total) if total > 0 else 0.0


def dev_risk(weights: np.ndarray, source_val_losses: np.ndarray) -> float:
    """DEV's control-variate estimate of the target risk from importance ``weights`` and the
    per-example ``source_val_losses`` of one model on the same rows (both ``(n_v,)``)."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    losses = np.asarray(source_val_losses, dtype=np.float64).reshape(-1)
    if w.shape != losses.shape or len(w) < 2 or not (np.isfinite(w).all() and np.isfinite(losses).all()):
        raise DataError(f"dev: need as many finite weights as finite losses (at least 2), got {w.shape} weights and "
                        f"{losses.shape} losses; compute both on the same source validation rows")
    weighted = w * losses
    var_w = np.var(w, ddof=1)
    eta = 0.0 if var_w <= 0 else -np.cov(weighted, w, ddof=1)[0, 1] / var_w
    return float(weighted.mean() + eta * w.mean() - eta)
