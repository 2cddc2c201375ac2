"""Reading segmentation data: images with integer label masks of the same size.

Layouts: a root holding ``images/`` and ``masks/`` (files matched by stem), an images folder plus a
masks folder, or arrays/lists (images: uint8 ``(n, h, w[, 3])`` arrays, PIL images or paths; masks:
integer ``(n, h, w)`` arrays or a list of ``(h, w)`` arrays). Images become RGB uint8 ``(h, w, 3)``
arrays through :func:`headstart.data.load_image`; masks are read as integer label images (PNG modes
L, P, I, I;16 — a palette PNG gives its palette indices), never RGB-converted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..data import IMAGE_EXTENSIONS, load_image
from ..errors import DataError, DataPathError

MASK_MODES = ("L", "P", "I", "I;16", "I;16B", "I;16L", "1")


@dataclass(frozen=True)
class SegmentationData:
    """``images``: RGB uint8 ``(h, w, 3)`` arrays; ``masks``: int64 ``(h, w)`` arrays or None;
    ``names``: where each item came from (a file path, or ``images[i]`` for arrays)."""

    images: list
    masks: list | None
    names: list


def _first(names, n=5) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def _files(folder: Path, extensions) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataPathError(f"{folder} is not a folder; pass a folder of images (or a root holding images/ and masks/)")
    found = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in extensions:
            if path.stem in found:
                raise DataError(f"{folder} holds two files named {path.stem!r} ({found[path.stem].name}, {path.name}); "
                                "images and masks are matched by name, so keep one")
            found[path.stem] = path
    if not found:
        raise DataPathError(f"no files with extension {', '.join(extensions)} in {folder}")
    return found


def read_mask(item, where: str) -> np.ndarray:
    """An integer ``(h, w)`` label image from a path or array; an RGB mask is refused."""
    if isinstance(item, (str, os.PathLike)):
        with Image.open(item) as im:
            im.load()
            if im.mode not in MASK_MODES:
                raise DataError(f"mask {where} has PIL mode {im.mode!r}: a mask must be a single-channel label image "
                                "(PNG mode L, P, I or I;16) whose pixel values are class ids; convert it, e.g. with "
                                "Image.fromarray(labels.astype('uint8'))")
            array = np.array(im)
    else:
        array = np.asarray(item)
    if array.ndim != 2:
        raise DataError(f"mask {where} has shape {array.shape}: a mask must be a single-channel (h, w) label image "
                        "of class ids, not RGB")
    if array.dtype.kind == "f" and not np.all(array == np.round(array)):
        raise DataError(f"mask {where} holds non-integer values (dtype {array.dtype}); pass integer class ids")
    if array.dtype.kind not in "biuf":
        raise DataError(f"mask {where} has dtype {array.dtype}; pass integer class ids")
    return array.astype(np.int64)


def read_image(item, where: str, window=None) -> np.ndarray:
    kwargs = {"window": window} if window is not None else {}
    return np.asarray(load_image(item, **kwargs), dtype=np.uint8)


def _folder_pair(images_dir: Path, masks_dir: Path):
    images = _files(images_dir, IMAGE_EXTENSIONS)
    masks = _files(masks_dir, (".png",))
    lonely_images = sorted(set(images) - set(masks))
    lonely_masks = sorted(set(masks) - set(images))
    if lonely_images:
        raise DataError(f"{len(lonely_images)} image(s) in {images_dir} have no mask of the same name in {masks_dir}: "
                        f"{_first([images[s].name for s in lonely_images])}; add masks/<name>.png or remove them")
    if lonely_masks:
        raise DataError(f"{len(lonely_masks)} mask(s) in {masks_dir} have no image of the same name in {images_dir}: "
                        f"{_first([masks[s].name for s in lonely_masks])}; add the images or remove the masks")
    stems = sorted(images)
    return [images[s] for s in stems], [masks[s] for s in stems]


def resolve_folders(X, y=None) -> tuple[Path, Path | None]:
    """``(images_dir, masks_dir)`` from a root with images/ (+ masks/) or an images folder (+ masks folder)."""
    root = Path(X).expanduser()
    if y is not None:
        return root, Path(y).expanduser()
    if (root / "images").is_dir():
        return root / "images", (root / "masks") if (root / "masks").is_dir() else None
    return root, None


def load_segmentation(X, y=None, *, require_masks: bool, window=None) -> SegmentationData:
    """Images (and masks) from any accepted layout; checks that every mask has its image's size."""
    if isinstance(X, (str, os.PathLike)):
        images_dir, masks_dir = resolve_folders(X, y if isinstance(y, (str, os.PathLike)) else None)
        if masks_dir is None:
            if require_masks:
                raise DataPathError(f"no masks for {X}: pass a root holding images/ and masks/, or the masks folder "
                                    "(masks=... / --masks MASKS_DIR)")
            paths = [images_dir / f"{stem}{p.suffix}" for stem, p in _files(images_dir, IMAGE_EXTENSIONS).items()]
            mask_items = None
        else:
            paths, mask_items = _folder_pair(images_dir, masks_dir)
        names = [str(p) for p in paths]
        items = paths
    else:
        items = list(X)
        names = [str(i) if isinstance(i, (str, os.PathLike)) else f"images[{k}]" for k, i in enumerate(items)]
        mask_items = None if y is None else list(y)
        if mask_items is None and require_masks:
            raise DataError("fit/score need masks: pass y, one integer (h, w) label image per image")
        if mask_items is not None and len(mask_items) != len(items):
            raise DataError(f"got {len(items)} images but {len(mask_items)} masks; pass one mask per image")
    if not items:
        raise DataError(f"no images in {X}")
    images = [read_image(item, name, window) for item, name in zip(items, names)]
    masks = None
    if mask_items is not None:
        masks = []
        for k, (item, image) in enumerate(zip(mask_items, images)):
            where = str(item) if isinstance(item, (str, os.PathLike)) else f"masks[{k}]"
            mask = read_mask(item, where)
            if mask.shape != image.shape[:2]:
                raise DataError(f"mask {where} is {mask.shape[1]}x{mask.shape[0]} (w x h) but its image {names[k]} is "
                                f"{image.shape[1]}x{image.shape[0]}; a mask labels every pixel of its image, so resize "
                                "it with nearest-neighbour interpolation to the image's size")
            masks.append(mask)
    return SegmentationData(images, masks, names)


def check_known(data: SegmentationData, classes: np.ndarray) -> list[np.ndarray]:
    """The masks as indices into ``classes``; a value the model never saw raises, naming the mask."""
    out = []
    for mask, name in zip(data.masks, data.names):
        unknown = np.setdiff1d(np.unique(mask), classes)
        if unknown.size:
            raise DataError(f"the mask of {name} holds class value(s) {unknown.tolist()[:10]} that the model was not "
                            f"trained on (its classes: {classes.tolist()}); fix the mask or retrain with that class")
        out.append(np.searchsorted(classes, mask))
    return out
