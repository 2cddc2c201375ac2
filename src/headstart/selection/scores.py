"""The registry of transferability scores, ``score(features (n, d), labels (n,)) -> float`` by short name.

Apart from the package's ``__init__`` so that :mod:`headstart.selection.rank` can look a score up
without importing the package that imports it.
"""

from __future__ import annotations

from collections.abc import Callable

from ..registry import Registry
from .hscore import h_score, regularized_h_score
from .leep import leep_score
from .logme import logme_score
from .nce import nce_score

SCORES: Registry[Callable] = Registry("score")
SCORES.register("logme", logme_score)
SCORES.register("leep", leep_score)
SCORES.register("nce", nce_score)
SCORES.register("hscore", h_score)
SCORES.register("regularized_hscore", regularized_h_score)
