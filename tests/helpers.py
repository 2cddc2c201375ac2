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
    if modality == "audio":
        return tiny_tones(per_class)
    return tiny_images(per_class) if modality == "image" else tiny_texts(per_class)


def tiny_tones(per_class: int = 6, classes=("low", "high")):
    """Synthetic 16 kHz waveforms (0.3-0.5 s tones), low vs high pitch: ``(list of 1-D arrays, labels)``."""
    rng = np.random.default_rng(0)
    X, y = [], []
    for label, base in zip(classes, (200.0, 1200.0)):
        for i in range(per_class):
            t = np.arange(int(16000 * (0.3 + 0.2 * rng.random()))) / 16000
            X.append((0.3 * np.sin(2 * np.pi * base * (1 + 0.1 * i) * t)).astype(np.float32))
            y.append(label)
    return X, np.array(y)


def separable_features(per_class=20):
    """Three classes of 8-d feature vectors, two of them shifted along their own axis: ``(X, y)``."""
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], per_class)
    X = rng.standard_normal((len(y), 8)).astype(np.float32)
    X[y == "a", 0] += 3
    X[y == "b", 1] += 3
    return X, y
