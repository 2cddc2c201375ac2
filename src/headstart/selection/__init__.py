"""Transferability scores: predict, from frozen features alone, how well a backbone will transfer.

Every score has the signature ``score(features (n, d), labels (n,)) -> float``, higher = better
predicted transfer, and is registered in :data:`SCORES` (:mod:`.scores`) under a short name (the functions are
named ``*_score`` so they do not hide their modules, ``headstart.selection.logme`` etc.):

- ``logme``: LogME, the maximum Bayesian evidence of a linear model (You et al. 2021).
- ``leep``: LEEP with Gaussian-mixture pseudo-source classes, i.e. N-LEEP (Nguyen et al. 2020;
  Li et al. 2021).
- ``nce``: negative conditional entropy of the labels given the hard clusters (Tran et al. 2019).
- ``hscore``: H-score (Bao et al. 2019).
- ``regularized_hscore``: H-score with Ledoit-Wolf shrinkage (Ibrahim et al. 2022).

:func:`rank_backbones` ranks backbones and layer groups with one of them; :func:`suggest_freeze`
turns a backbone's ranking into a freeze depth. Importing this package does not import torch.
"""

from __future__ import annotations

from .hscore import h_score, regularized_h_score
from .leep import leep_from_probabilities, leep_score
from .logme import logme_score
from .nce import nce_from_assignments, nce_score
from .rank import RankRow, rank_backbones, suggest_freeze
from .scores import SCORES

__all__ = [
    "SCORES", "RankRow", "h_score", "leep_from_probabilities", "leep_score", "logme_score", "nce_from_assignments",
    "nce_score", "rank_backbones", "regularized_h_score", "suggest_freeze",
]
