"""A picture and a number of the domain shift, before and after adaptation.

The report draws source and target features in 2-D (PCA) twice: as the pre-trained backbone sees
them, and as the adapted model's head sees them. Alignment shows as the two clouds overlapping.

The number is the *domain classifier accuracy* (the proxy A-distance of Ben-David et al., "A theory
of learning from different domains", Machine Learning 2010: ``d_A = 2 (1 - 2 err)``): a logistic
regression trained to tell source features from target features, scored by stratified 3-fold
cross-validation on a class-balanced sample. 0.5 means the domains cannot be told apart (aligned);
1.0 means they are fully separated. It is computed in the full feature space, not in the 2-D view.

Shapes: ``source`` ``(n_s, d)``, ``target`` ``(n_t, d)``, both at most ``max_points`` rows after
sampling; the same sampled rows are used before and after, so the two views show the same inputs.
"""

from __future__ import annotations

import numpy as np

MAX_POINTS = 300


def sample_rows(n_source: int, n_target: int, max_points: int = MAX_POINTS, random_state: int = 0):
    """Indices ``(source_rows, target_rows)``, each at most ``max_points`` long, sorted."""
    rng = np.random.default_rng(random_state)
    pick = lambda n: np.sort(rng.choice(n, size=min(n, max_points), replace=False))
    return pick(n_source), pick(n_target)


def domain_view(source: np.ndarray, target: np.ndarray, random_state: int = 0) -> dict:
    """2-D PCA coordinates of ``source`` and ``target`` (fitted on both) and the domain classifier accuracy."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    if not (np.isfinite(source).all() and np.isfinite(target).all()):
        return {"source": [], "target": [], "explained_variance": [0.0, 0.0], "domain_accuracy": None,
                "note": "features not finite: the model's training diverged"}
    both = np.concatenate([source, target])
    mean, scale = both.mean(0), both.std(0)
    both = (both - mean) / np.where(scale > 1e-8, scale, 1.0)
    n_components = min(2, both.shape[0], both.shape[1])
    pca = PCA(n_components=n_components, random_state=random_state).fit(both)
    coords = pca.transform(both)
    if n_components < 2:  # one feature or one point: draw it on a line
        coords = np.pad(coords, ((0, 0), (0, 2 - n_components)))
    domain = np.r_[np.zeros(len(source), int), np.ones(len(target), int)]
    folds = min(3, len(source), len(target))
    accuracy = None
    if folds >= 2:
        scores = cross_val_score(LogisticRegression(max_iter=1000), both, domain,
                                 cv=StratifiedKFold(folds, shuffle=True, random_state=random_state))
        accuracy = float(np.mean(scores))
    return {"source": np.round(coords[: len(source)], 4).tolist(), "target": np.round(coords[len(source):], 4).tolist(),
            "explained_variance": [float(v) for v in pca.explained_variance_ratio_],
            "domain_accuracy": accuracy}


def before_after(before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray], source_labels,
                 random_state: int = 0) -> dict:
    """``{"before": domain_view, "after": domain_view, "source_labels": [...]}`` of already-sampled rows."""
    return {"before": domain_view(*before, random_state=random_state),
            "after": domain_view(*after, random_state=random_state),
            "source_labels": [int(label) for label in source_labels],
            "n_source": int(len(before[0])), "n_target": int(len(before[1]))}
