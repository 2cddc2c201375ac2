"""The one decomposition the scores share: the thin SVD of a feature matrix, via its smaller Gram matrix.

For ``F`` ``(n, d)`` with ``F = U diag(s) V^T`` (rank ``r``), the symmetric eigendecomposition of
``F F^T`` ``(n, n)`` gives ``U`` and of ``F^T F`` ``(d, d)`` gives ``V``, both with eigenvalues
``sigma = s**2``. Decomposing the smaller one (LAPACK ``syevd``) is several times faster than an
SVD of ``F`` and exact to round-off in ``sigma``; eigenvalues below ``10 max(n, d) eps`` of the
largest count as zero and are dropped.
"""

from __future__ import annotations

import numpy as np


def gram_spectrum(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(sigma (r,), U (n, r) or None, V (d, r) or None)``, ``sigma`` ascending; ``U`` when ``n <= d``."""
    from scipy.linalg import eigh

    n, d = matrix.shape
    gram = matrix @ matrix.T if n <= d else matrix.T @ matrix
    sigma, vectors = eigh(gram, driver="evd")  # ascending
    keep = sigma > max(float(sigma[-1]), 0.0) * max(n, d) * np.finfo(float).eps * 10
    if n <= d:
        return sigma[keep], vectors[:, keep], None
    return sigma[keep], None, vectors[:, keep]


def principal_components(centered: np.ndarray, dims: int) -> np.ndarray:
    """PCA scores ``(n, <= dims)`` of already centred rows: projections on the top ``dims`` directions."""
    sigma, u, v = gram_spectrum(centered)
    top = slice(max(len(sigma) - dims, 0), None)
    scores = u[:, top] * np.sqrt(sigma[top]) if u is not None else centered @ v[:, top]
    return scores[:, ::-1]  # largest variance first
