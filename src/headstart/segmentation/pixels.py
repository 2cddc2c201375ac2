"""The no-transfer pixel baseline: a multinomial logistic regression on each pixel's own colour and its
neighbourhood's (a per-pixel classifier in the spirit of Shotton et al.'s texton features, kept linear
so it saves as plain arrays: no pickle, no torch).

Features per pixel (``F = 12``): RGB in 0..1, the RGB mean over 5×5 and 15×15 windows, and the RGB
standard deviation over 5×5. Training samples at most ``PER_CLASS`` pixels of each class (seeded), so
small classes are not drowned out; prediction scores every pixel at the image's own size.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter
from sklearn.linear_model import LogisticRegression

PER_CLASS = 4000


def pixel_features(image: np.ndarray) -> np.ndarray:
    """uint8 ``(h, w, 3)`` → float32 ``(h * w, 12)``."""
    x = image.astype(np.float32) / 255.0
    means = [uniform_filter(x, size=(k, k, 1), mode="reflect") for k in (5, 15)]
    square = uniform_filter(x * x, size=(5, 5, 1), mode="reflect")
    std = np.sqrt(np.maximum(square - means[0] ** 2, 0.0))
    return np.concatenate([x, *means, std], axis=-1).reshape(-1, 12)


class PixelSegmenter:
    """Standardised features → softmax over the classes seen in training (others get probability 0)."""

    kind = "pixels"

    def __init__(self, n_classes: int, arrays: dict | None = None):
        self.n_classes = n_classes
        self.arrays = arrays or {}

    def fit(self, images, masks, seed: int) -> PixelSegmenter:
        rng = np.random.default_rng(seed)
        rows, labels = [], []
        for image, mask in zip(images, masks):
            features, flat = pixel_features(image), np.asarray(mask).ravel()
            for c in np.unique(flat):
                where = np.flatnonzero(flat == c)
                take = rng.choice(where, size=min(len(where), PER_CLASS // len(images) + 1), replace=False)
                rows.append(features[take])
                labels.append(flat[take])
        X, y = np.concatenate(rows), np.concatenate(labels)
        mean, scale = X.mean(0), X.std(0) + 1e-6
        seen = np.unique(y)
        if len(seen) < 2:
            self.arrays = {"mean": mean, "scale": scale, "seen": seen, "coef": np.zeros((1, 12)), "intercept": np.zeros(1)}
            return self
        model = LogisticRegression(max_iter=300, C=1.0, random_state=seed).fit((X - mean) / scale, y)
        coef, intercept = model.coef_, model.intercept_
        if len(seen) == 2:  # sklearn keeps one row for two classes: logit(c1) - logit(c0)
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
        self.arrays = {"mean": mean, "scale": scale, "seen": seen, "coef": coef, "intercept": intercept}
        return self

    def predict_proba(self, images) -> list[np.ndarray]:
        a = self.arrays
        out = []
        for image in images:
            logits = ((pixel_features(image) - a["mean"]) / a["scale"]) @ a["coef"].T + a["intercept"]
            logits -= logits.max(1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(1, keepdims=True)
            full = np.zeros((len(p), self.n_classes), dtype=np.float32)
            full[:, a["seen"].astype(int)] = p
            out.append(full.T.reshape(self.n_classes, *image.shape[:2]))
        return out

    def tensors(self) -> dict:
        import torch

        return {f"pixels/{k}": torch.as_tensor(np.ascontiguousarray(v, dtype=np.float64)) for k, v in self.arrays.items()}

    @classmethod
    def from_tensors(cls, tensors: dict, n_classes: int) -> PixelSegmenter:
        arrays = {k.removeprefix("pixels/"): v.numpy() for k, v in tensors.items()}
        arrays["seen"] = arrays["seen"].astype(np.int64)
        return cls(n_classes, arrays)
