"""Image files: decoding to RGB, checking that a file decodes, and reading an image folder.

Nothing here knows about :class:`~headstart.data.inputs.LabeledData`; :mod:`headstart.data.inputs`
puts these pieces together.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from headstart.errors import DataError, DataPathError

from .medical import (DICOM_EXTENSIONS, DicomProblem, apply_window, decode_dicom, is_dicom_path, parse_window, read_dicom,
                      window_for)
from .screen import SkippedInput, check_no_loose_files, first_names, screen_files, walk_class_folders

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", *DICOM_EXTENSIONS)

_WHITE = (255, 255, 255)
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_16BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}


def is_image_path(name: str | os.PathLike) -> bool:
    """True when ``name`` ends in one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return str(name).lower().endswith(IMAGE_EXTENSIONS)


# --------------------------------------------------------------------------- decoding to RGB


def load_image(item, window=None) -> Image.Image:
    """Return ``item`` as a fully loaded RGB :class:`PIL.Image.Image`.

    DICOM files (``.dcm``, ``.dicom``) are read by :func:`headstart.data.medical.read_dicom`: rescaled,
    windowed with ``window`` (None: the file's own window, else its min..max), MONOCHROME1 inverted.
    ``window`` (a :class:`~headstart.data.medical.Window`, ``'C,W'``, ``(c, w)`` or ``'minmax'``) also
    windows 16-bit files and ``uint16`` arrays, in their raw values, instead of dividing by 257; 8-bit
    and colour images are never windowed. ``window=None`` leaves every non-DICOM input as described next.

    ``item`` may be a path (``str`` or ``Path``), a PIL image, or a ``uint8``/``uint16``/``bool``
    array of shape ``(h, w)`` or ``(h, w, c)`` with ``c`` in 1, 3, 4. Every PIL mode is converted:
    transparency is composited over white; 16-bit data is divided by 257 (the 16-bit range, not the
    image's own maximum, so a dark image stays dark); 32-bit ``'I'`` data is treated as 16-bit when it
    fits in 0..65535 (that is how Pillow opens many 16-bit PNGs) and scaled by the 32-bit range
    otherwise; ``'F'`` data is read as 0..1 when every value lies there, otherwise as 0..255, clipped.
    EXIF orientation of files is applied. No file handle is left open.
    """
    window = parse_window(window)  # a bad window is a ConfigError here, not an unreadable image below
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.is_file():
            raise DataPathError(f"image file not found: {path.absolute()}.")
        if is_dicom_path(path):
            return _array_to_pil(read_dicom(path, window)).convert("RGB")
        try:
            with Image.open(path) as im:
                im.load()
                return _windowed(_exif_upright(im), window)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(
                f"cannot read image {path.absolute()}: {describe_image_error(exc)}. "
                "Delete or re-export the file."
            ) from exc
    if isinstance(item, Image.Image):
        item.load()
        return _windowed(item, window)
    if isinstance(item, np.ndarray):
        if window is not None and item.dtype == np.uint16:
            return _window_to_rgb(_single_channel(item), window)
        return to_rgb(_array_to_pil(item))
    raise DataError(
        f"cannot use a {type(item).__name__} as an image; pass a file path, a PIL image, "
        "or a uint8 array of shape (h, w) or (h, w, c)."
    )


def _windowed(im: Image.Image, window) -> Image.Image:
    """``im`` as RGB; a 16-bit (or 32-bit integer) greyscale image through ``window`` when one is given."""
    if window is None or not (im.mode in _16BIT_MODES or im.mode == "I"):
        return to_rgb(im)
    return _window_to_rgb(np.asarray(im), window)


def _window_to_rgb(values: np.ndarray, window) -> Image.Image:
    values = values.astype(np.float64)
    grey = apply_window(values, window_for(values, parse_window(window)))
    return Image.fromarray(grey).convert("RGB")


def _single_channel(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise DataError(f"a window applies to greyscale arrays of shape (h, w); got a uint16 array of shape "
                        f"{a.shape}. Drop the window, or pass one channel.")
    return a


def _exif_upright(im: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # malformed EXIF must not make a readable image unreadable
        return im


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert a loaded PIL image of any mode to a new RGB image (see :func:`load_image`)."""
    mode = im.mode
    if mode == "RGB":
        return im.copy()
    if mode == "P":
        mode_to = "RGBA" if "transparency" in im.info else "RGB"
        im = im.convert(mode_to)
        return _over_white(im) if mode_to == "RGBA" else im
    if mode in _ALPHA_MODES:
        if mode == "La":  # premultiplied grey+alpha: Pillow has no direct conversion
            im = Image.merge("RGBa", (*[im.getchannel(0)] * 3, im.getchannel(1))).convert("RGBA")
        return _over_white(im.convert("RGBA"))
    if mode in _16BIT_MODES or mode == "I":
        return Image.fromarray(_scale_int_to_uint8(np.asarray(im)), mode="L").convert("RGB")
    if mode == "F":
        return Image.fromarray(_scale_float_to_uint8(np.asarray(im)), mode="L").convert("RGB")
    try:  # '1', 'L', 'CMYK', 'YCbCr', 'LAB', 'HSV', 'RGBX'…
        return im.convert("RGB")
    except ValueError as exc:
        raise DataError(f"cannot convert an image of mode {mode!r} to RGB ({exc}).") from exc


def _over_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _scale_int_to_uint8(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.int64)
    if a.min(initial=0) >= 0 and a.max(initial=0) <= 0xFFFF:
        return np.round(a / 257.0).astype(np.uint8)
    return np.round(np.clip(a, 0, None) / ((2**31 - 1) / 255.0)).astype(np.uint8)


def _scale_float_to_uint8(a: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if a.size and a.min() >= 0.0 and a.max() <= 1.0:
        a = a * 255.0
    return np.round(np.clip(a, 0.0, 255.0)).astype(np.uint8)


def _array_to_pil(a: np.ndarray) -> Image.Image:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise DataError(
            f"an image array must have shape (h, w) or (h, w, c) with c in 1, 3, 4; got shape {a.shape}."
        )
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = np.round(a / 257.0).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise DataError(
            f"an image array must be uint8 (0..255) or uint16; got dtype {a.dtype}. Convert it first, "
            "e.g. (x * 255).round().astype(np.uint8) for floats in 0..1."
        )
    a = np.ascontiguousarray(a)
    if a.ndim == 2:
        return Image.fromarray(a, mode="L")
    return Image.fromarray(a, mode="RGB" if a.shape[2] == 3 else "RGBA")


# --------------------------------------------------------------------------- checking files


def describe_image_error(exc: BaseException) -> str:
    """A short reason for a decoding failure, e.g. ``truncated image file (...)``."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, UnidentifiedImageError):
        return "not a recognised image format (Pillow cannot identify it)"
    if isinstance(exc, Image.DecompressionBombError):
        return f"image too large to decode safely ({text})"
    if "truncated" in text.lower():
        return f"truncated image file ({text})"
    return f"corrupt or unreadable image ({type(exc).__name__}: {text})"


def image_problem(path: str | os.PathLike) -> str | None:
    """Fully decode the file at ``path``; return why it cannot be used, or None if it is fine."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
        if is_dicom_path(path):
            decode_dicom(path, None)
            return None
        with Image.open(path) as im:
            im.load()
    except FileNotFoundError:
        return "file not found"
    except DicomProblem as problem:
        return str(problem)
    except Exception as exc:  # any decoder failure is reported, never raised from here
        return describe_image_error(exc)
    return None


def screen_images(paths: list[str], wheres: list[str], strict: bool, stacklevel: int
                  ) -> tuple[list[int], list[SkippedInput]]:
    """Decode every image; return the indices that decode and a SkippedInput for each that does not."""
    return screen_files(paths, wheres, image_problem, singular="image", plural="images",
                        hint="image files (re-export them)", strict=strict, stacklevel=stacklevel + 1, threads=True)


# --------------------------------------------------------------------------- image folders


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def list_image_folder(root: Path) -> tuple[list[str], list[str]]:
    """Return ``(paths, labels)`` for the layout ``root/<class>/<image>``, sorted by path.

    Images deeper inside a class folder count for that class. Hidden files and folders (names
    starting with '.') are ignored. Raises :class:`DataPathError` when the folder holds no images or
    holds images directly in ``root``.
    """
    entries = sorted(p for p in root.iterdir() if _visible(p))
    if not entries:
        raise DataPathError(
            f"the folder {root} is empty. An image dataset is laid out as "
            f"{root}/<class>/<image>, one subfolder per class."
        )
    check_no_loose_files(root, entries, is_image_path, kind="image", placeholder="<image>", example="cat/1.jpg")
    paths, labels, other = walk_class_folders(root, entries, is_image_path)
    if not paths:
        other = [p.name for p in entries if p.is_file()] + other
        found = f"found {len(other)} file(s): {first_names(other)}" if other else "found no files at all"
        tables = [o for o in other if o.lower().endswith((".csv", ".tsv", ".jsonl", ".json", ".parquet"))]
        hint = f" To load a table instead, pass its path, e.g. {root / tables[0]}." if tables else ""
        raise DataPathError(
            f"no images found in {root}: looked for {', '.join(IMAGE_EXTENSIONS)} (any case) in "
            f"{root}/<class>/<image>, but {found}.{hint}"
        )
    return paths, labels
