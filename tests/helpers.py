"""Tiny real inputs shared by the tests: real images and sentences, a few of each class."""

import numpy as np

from headstart.datasets import load_digits_images, load_vader_movie_sample


def tiny_images(per_class: int = 6, classes=("0", "1")):
    X, y = load_digits_images()
    keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in classes])
    return X[keep], y[keep]


def tiny_texts(per_class: int = 6):
    texts, labels = load_vader_movie_sample()
    texts = np.asarray(texts, dtype=object)
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)])
    return list(texts[keep]), labels[keep]


def tiny_inputs(modality: str, per_class: int = 6):
    return tiny_images(per_class) if modality == "image" else tiny_texts(per_class)
