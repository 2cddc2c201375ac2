"""Small real data sets that ship with headstart or with its dependencies, for demos and tests.

Nothing here touches the network.

* :func:`load_vader_movie_sample` — 600 movie-review sentences (300 positive, 300 negative)
  sampled from the VADER sentiment ground truth of Hutto & Gilbert (ICWSM 2014), as published in
  the ``vaderSentiment==3.3.2`` source distribution on PyPI. MIT licence; the licence text and how
  the sample was made are in ``LICENSE-vaderSentiment.txt`` next to the data file.
* :func:`load_digits_images` — the 1,797 8×8 handwritten digits of the UCI "Optical Recognition
  of Handwritten Digits" data set (optdigits; Alpaydin & Kaynak, 1998), as bundled with
  scikit-learn (BSD-3-Clause package) in ``sklearn.datasets.load_digits``.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import importlib.resources
import pathlib

import numpy as np

__all__ = ["bundled_path", "load_digits_images", "load_vader_movie_sample"]

VADER_MOVIE_SAMPLE = "vader_movie_sample.tsv"

_extracted = contextlib.ExitStack()  # keeps files extracted from a zipped install alive
atexit.register(_extracted.close)


def bundled_path(name: str) -> pathlib.Path:
    """Filesystem path of the file ``name`` shipped in ``headstart/datasets/``.

    Resolved through :mod:`importlib.resources`, so it works for any installation (a zipped
    install is extracted to a temporary file that lives until the interpreter exits). Raises
    ``FileNotFoundError`` listing the bundled files when ``name`` is not one of them.
    """
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"name must be a plain file name in headstart/datasets, got {name!r}")
    folder = importlib.resources.files(__name__)
    resource = folder.joinpath(name)
    if not resource.is_file():
        available = sorted(
            p.name for p in folder.iterdir() if p.is_file() and not p.name.endswith((".py", ".pyc"))
        )
        raise FileNotFoundError(
            f"no bundled file {name!r} in headstart/datasets; available: {', '.join(available)}"
        )
    if isinstance(resource, pathlib.Path):
        return resource
    return _extracted.enter_context(importlib.resources.as_file(resource))


def load_vader_movie_sample() -> tuple[list[str], np.ndarray]:
    """600 English movie-review sentences labelled ``"positive"`` (300) or ``"negative"`` (300).

    Returns ``(texts, labels)``: a list of ``str`` and a NumPy array of ``str`` labels.

    Source: ``hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt`` inside
    ``additional_resources/hutto_ICWSM_2014.tar.gz`` of the PyPI source distribution
    ``vaderSentiment==3.3.2`` — movie-review snippets rated by human judges for the paper
    C.J. Hutto and E. Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis of
    Social Media Text", ICWSM 2014. MIT licence, Copyright (c) 2016 C.J. Hutto (see
    ``LICENSE-vaderSentiment.txt`` via ``bundled_path``). The label is the sign of the mean human
    rating; sentences rated exactly 0 were dropped, then 300 of each sign were drawn at random
    with seed 0.
    """
    texts: list[str] = []
    labels: list[str] = []
    with bundled_path(VADER_MOVIE_SAMPLE).open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader)
        if header != ["text", "label"]:
            raise ValueError(f"{VADER_MOVIE_SAMPLE}: unexpected header {header}")
        for row in reader:
            if len(row) != 2:
                raise ValueError(f"{VADER_MOVIE_SAMPLE} line {reader.line_num}: {len(row)} fields")
            texts.append(row[0])
            labels.append(row[1])
    return texts, np.array(labels, dtype=str)


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 handwritten digits of scikit-learn's ``load_digits`` as 8×8 uint8 images.

    Returns ``(images, labels)``: ``images`` uint8 of shape ``(1797, 8, 8)`` in 0..255 (the
    original 0..16 pixel counts scaled by 255/16 and rounded), ``labels`` a NumPy array of ``str``
    digits ``"0"`` … ``"9"``.

    Source: the UCI Machine Learning Repository's "Optical Recognition of Handwritten Digits"
    (optdigits) test set, E. Alpaydin and C. Kaynak (1998), as bundled with scikit-learn
    (BSD-3-Clause licensed package) and loaded with ``sklearn.datasets.load_digits``.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    labels = np.array([str(int(t)) for t in bunch.target], dtype="<U1")
    return images, labels
