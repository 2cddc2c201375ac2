"""A segmentation task whose masks are exact by construction: real items pasted on real photographs.

No labeled segmentation data set installs on this machine (see ``../shared/DATASETS.md``), so the
demo and benchmark task is built from two real sources and says so plainly:

* the items are real handwritten digits (UCI optdigits, bundled with scikit-learn) or any other
  small grey images passed in (the benchmark passes Fashion-MNIST garments);
* the backgrounds are crops of the texture and scene photographs bundled with scikit-image
  (``brick``, ``grass``, ``gravel``, ``coffee``, ``chelsea``, ``astronaut``, ``rocket``,
  ``immunohistochemistry``; BSD/public-domain licences listed in ``skimage.data``).

Each image gets 1–3 items at random positions and scales. An item replaces the background only
where its own intensity is at least :data:`INK` of its maximum, with a random tint; the mask holds
``class + 1`` exactly there (later items overwrite earlier ones in both) and 0 elsewhere. So the
mask is exactly where an item was pasted — no annotator error — while the network must still tell
a digit stroke from a brick edge of the same brightness.

Shapes: ``images`` uint8 ``(n, size, size, 3)``, ``masks`` uint8 ``(n, size, size)`` in
``0..n_classes``, ``class_names[0] == "background"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["SegmentationSet", "pasted_items", "texture_photographs", "write_folders", "INK"]

INK = 0.35  # an item pixel counts (and is pasted) from this fraction of the item's own maximum
_TEXTURES = ("brick", "grass", "gravel", "coffee", "chelsea", "astronaut", "rocket", "immunohistochemistry")


@dataclass(frozen=True)
class SegmentationSet:
    images: np.ndarray  # uint8 (n, size, size, 3)
    masks: np.ndarray  # uint8 (n, size, size), 0 = background, k = class_names[k]
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)


def texture_photographs() -> list[np.ndarray]:
    """The bundled scikit-image photographs used as backgrounds, each uint8 ``(h, w, 3)``."""
    try:
        import skimage.data
    except ImportError as exc:
        raise ImportError("the segmentation demo task needs scikit-image's bundled photographs: "
                          "pip install 'headstart[segmentation]'") from exc
    photos = []
    for name in _TEXTURES:
        a = np.asarray(getattr(skimage.data, name)())
        photos.append(np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a[:, :, :3])
    return photos


def _digits() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images * (255.0 / 16.0)).astype(np.uint8), digits.target, tuple(str(d) for d in range(10))


def pasted_items(n: int, *, size: int = 64, items="digits", classes=None, seed: int = 0,
                 per_image: tuple[int, int] = (1, 3)) -> SegmentationSet:
    """``n`` images of ``size`` px with 1–3 items each on background crops; see the module docstring.

    ``items``: ``"digits"`` (scikit-learn's 8×8 digits) or a tuple ``(X uint8 (m, h, w), y int (m,),
    names)``. ``classes``: the item classes to use (default all); they become mask values 1..k in
    the order given. Items are drawn from the pool at random, so two calls with different seeds
    may share items: split one call's output for train/test instead.
    """
    if n < 1 or size < 16:
        raise ValueError(f"pasted_items needs n >= 1 and size >= 16; got n={n}, size={size}")
    X, y, names = _digits() if isinstance(items, str) and items == "digits" else items
    classes = list(range(len(names))) if classes is None else list(classes)
    pools = [np.flatnonzero(y == c) for c in classes]
    if any(len(p) == 0 for p in pools):
        raise ValueError(f"no items of class {[c for c, p in zip(classes, pools) if len(p) == 0]} in the item pool")
    rng = np.random.default_rng(seed)
    photos = texture_photographs()
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        images[i] = _background(photos[rng.integers(len(photos))], size, rng)
        for _ in range(rng.integers(per_image[0], per_image[1] + 1)):
            k = int(rng.integers(len(classes)))
            item = X[pools[k][rng.integers(len(pools[k]))]]
            _paste(images[i], masks[i], item, k + 1, rng)
    return SegmentationSet(images, masks, ("background", *(str(names[c]) for c in classes)))


def _background(photo: np.ndarray, size: int, rng) -> np.ndarray:
    h, w = photo.shape[:2]
    side = int(rng.integers(size, min(h, w, 3 * size) + 1))  # zoom varies: 1–3 crop pixels per output pixel
    top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
    crop = Image.fromarray(np.ascontiguousarray(photo[top:top + side, left:left + side]))
    return np.asarray(crop.resize((size, size), Image.BILINEAR))


def _paste(image: np.ndarray, mask: np.ndarray, item: np.ndarray, label: int, rng) -> None:
    size = image.shape[0]
    side = int(rng.integers(max(8, size // 4), max(9, size // 2) + 1))
    scaled = np.asarray(Image.fromarray(item).resize((side, side), Image.BILINEAR), dtype=np.float32)
    ink = scaled >= INK * max(float(scaled.max()), 1.0)
    top, left = int(rng.integers(size - side + 1)), int(rng.integers(size - side + 1))
    tint = rng.uniform(0.3, 1.0, size=3)
    shade = (scaled / max(float(scaled.max()), 1.0))[:, :, None] * tint * 255.0
    region = image[top:top + side, left:left + side]
    region[ink] = np.clip(shade[ink], 0, 255).astype(np.uint8)
    mask[top:top + side, left:left + side][ink] = label


def write_folders(dataset: SegmentationSet, root) -> Path:
    """Write ``root/images/NNNN.png`` (RGB) and ``root/masks/NNNN.png`` (mode L labels); return ``root``."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(len(dataset) - 1)))
    for i, (image, mask) in enumerate(zip(dataset.images, dataset.masks)):
        Image.fromarray(image, mode="RGB").save(root / "images" / f"{i:0{width}d}.png")
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{i:0{width}d}.png")
    (root / "classes.txt").write_text("\n".join(dataset.class_names) + "\n")
    return root
