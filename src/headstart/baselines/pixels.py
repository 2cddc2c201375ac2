"""Image baseline: logistic regression on raw pixels (grayscale, resized to ``size`` x ``size``).

No learned features at all, which is exactly what makes it a no-transfer baseline. On small,
centred, low-resolution images (scikit-learn's 8x8 digits) it beats a linear probe on ImageNet
features, and the planner must notice. Features: ``(n, size * size)`` floats in [0, 1]. DICOM and
16-bit images are read through ``window`` (see :mod:`headstart.data.medical`), saved with the state.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..data import load_image, parse_window, window_text
from .base import Baseline


class PixelLogistic(Baseline):
    name = "pixel_logistic"
    modality = "image"

    def __init__(self, size: int = 16, window=None):
        self.size = size
        self.window = parse_window(window)

    def fit_transform(self, items) -> np.ndarray:
        return self.transform(items)

    def transform(self, items) -> np.ndarray:
        rows = [np.asarray(load_image(item, window=self.window).convert("L").resize((self.size, self.size), Image.BILINEAR),
                           dtype=np.float32).ravel() / 255.0 for item in items]
        return np.stack(rows)

    def state(self):
        window = window_text(self.window)
        return {"size": self.size, **({"window": window} if window is not None else {})}, {}

    def set_state(self, settings, arrays):
        self.size = int(settings["size"])
        self.window = parse_window(settings.get("window"))
