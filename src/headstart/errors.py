"""headstart's own exception types.

Every error a user can cause is raised as one of these, with a message that says what went wrong,
where (file, row, argument), the value received and how to fix it. They subclass the built-in type
a Python user would catch for the same mistake (``ValueError``, ``FileNotFoundError``…), so code
written against scikit-learn conventions keeps working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError


class HeadstartError(Exception):
    """Base class of every error headstart raises on purpose."""


class DataError(HeadstartError, ValueError):
    """The input data is unusable as given (bad file, bad column, bad labels, bad shape)."""


class DataPathError(DataError, FileNotFoundError):
    """A data path does not exist or holds nothing headstart can read."""


class ConfigError(HeadstartError, ValueError):
    """An argument or configuration value is invalid."""


class UnknownNameError(HeadstartError, KeyError):
    """A name was looked up in a registry (backbones, strategies…) and is not there."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class WeightsNotFoundError(HeadstartError, FileNotFoundError):
    """Pretrained weights are not installed or not reachable; the message says how to get them."""


class RunFolderError(HeadstartError, ValueError):
    """A saved run folder is missing files, tampered with, or from an incompatible version."""


class TrainingDivergedError(HeadstartError, ArithmeticError):
    """The training loss became NaN or infinite; the message names where and what to lower."""


class NotFittedError(HeadstartError, _SklearnNotFittedError):
    """A method that needs a fitted estimator was called before ``fit``."""


class OutOfTimeError(HeadstartError, TimeoutError):
    """A fit under a deadline cannot finish its first epoch in time, so it has no epoch to keep.
    ``needed``: the seconds its first epoch still needed, as estimated (0 when not estimated)."""

    def __init__(self, message: str, needed: float = 0.0):
        super().__init__(message)
        self.needed = needed
        self.fit_seconds = needed  # the caller that timed the fit may add what it had already taken

    def __reduce__(self):  # pickled whole when the main process shares it (distributed.on_main)
        return type(self), (str(self), self.needed)


def did_you_mean(value: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" Did you mean 'a' or 'b'?"`` for close matches of ``value``, or ``""``."""
    matches = difflib.get_close_matches(str(value), [str(c) for c in choices], n=n, cutoff=0.5)
    if not matches:
        return ""
    quoted = [f"'{m}'" for m in matches]
    joined = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f" Did you mean {joined}?"
