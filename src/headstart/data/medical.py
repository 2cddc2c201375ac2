"""Medical grey levels: DICOM files and 16-bit images windowed to 8 bits.

The DICOM grey-level pipeline (DICOM PS3.3 C.11, "Grayscale transforms"):

1. Modality LUT (C.11.1): ``value = stored × RescaleSlope + RescaleIntercept`` (slope 1, intercept 0
   when the file has none), e.g. Hounsfield units for CT.
2. VOI LUT, the *linear* window function of PS3.3 C.11.2.1.2.1 with centre ``c`` and width ``w``
   (``w >= 1``), output range 0..255::

       x <= c - 0.5 - (w - 1) / 2  ->  0
       x >  c - 0.5 + (w - 1) / 2  ->  255
       otherwise                   ->  ((x - (c - 0.5)) / (w - 1) + 0.5) × 255

   rounded to the nearest integer (:func:`apply_window`). The window is the user's, or else the
   file's own WindowCenter / WindowWidth (the first of several), or else the image's own min..max.
3. MONOCHROME1 (white is the lowest value) is inverted after windowing, ``255 - y``, so that every
   image reaches the backbone as MONOCHROME2 (white is high).

Colour DICOM (RGB, or YBR that pydicom converts to RGB) is passed through as ``uint8`` (16-bit
colour divided by 257); no window applies to it. 16-bit PNG/TIFF files use the same
:func:`apply_window` on their raw values (see :func:`headstart.data.images.load_image`).

Shapes: :func:`read_dicom` returns ``(h, w)`` uint8 for greyscale and ``(h, w, 3)`` uint8 for colour.
pydicom is an optional dependency (``pip install 'headstart[medical]'``), imported only to read DICOM.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from headstart.errors import ConfigError, DataError

DICOM_EXTENSIONS = (".dcm", ".dicom")
MINMAX = "minmax"
DECODERS = "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg"
_FORMS = ("None (a DICOM file's own window, else the image's min..max; 16-bit PNG/TIFF: divided by 257), "
          "'C,W' such as '40,400' (centre 40, width 400, in the file's units: Hounsfield units after "
          "rescaling for CT), a (centre, width) pair, or 'minmax' (each image's own min..max)")


@dataclass(frozen=True)
class Window:
    """A VOI window: values ``center ± width / 2`` are spread over 0..255 (width >= 1, DICOM's rule)."""

    center: float
    width: float

    def __str__(self) -> str:  # the 'C,W' form parse_window reads back (JSON configs write str of unknown types)
        return f"{self.center:g},{self.width:g}"


def parse_window(value) -> Window | str | None:
    """``None``, ``'minmax'`` or a :class:`Window` from the forms a user writes (see ``_FORMS``)."""
    if value is None or isinstance(value, Window):
        return value
    if isinstance(value, str):
        text = value.strip().strip("()[]").lower()  # '(40, 400)': a pair written as text (str() of a config)
        if text in (MINMAX, "none"):
            return None if text == "none" else MINMAX
        parts = text.replace(";", ",").split(",")
    elif isinstance(value, (tuple, list)):
        parts = list(value)
    else:
        parts = None
    try:
        if parts is None or len(parts) != 2 or any(isinstance(p, bool) for p in parts):
            raise ValueError
        center, width = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(f"window={value!r} is not a window; use {_FORMS}") from None
    if not (np.isfinite(center) and np.isfinite(width)) or width < 1:
        raise ConfigError(f"window={value!r}: the width must be a finite number >= 1 (DICOM PS3.3 C.11.2.1.2) "
                          f"and the centre finite; use {_FORMS}")
    return Window(center, width)


def window_for(values: np.ndarray, window: Window | str | None, file_window: Window | None = None) -> Window:
    """The window to apply to ``values``: the one given, else the file's own, else min..max."""
    if isinstance(window, Window):
        return window
    if window is None and file_window is not None:
        return file_window
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    # chosen so that C.11.2.1.2.1 maps low to exactly 0 and high to exactly 255
    return Window(center=(low + high) / 2 + 0.5, width=high - low + 1)


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 linear VOI window of ``values`` (any shape, any units) to uint8 of the same shape."""
    x = np.asarray(values, dtype=np.float64)
    c, w = float(window.center), float(window.width)
    if w <= 1:  # the standard's width-1 window is a threshold at c - 0.5 (no division by w - 1 = 0)
        return np.where(x > c - 0.5, 255, 0).astype(np.uint8)
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0
    return np.round(np.clip(y, 0.0, 255.0)).astype(np.uint8)


def is_dicom_path(name: str | os.PathLike) -> bool:
    return str(name).lower().endswith(DICOM_EXTENSIONS)


class DicomProblem(Exception):
    """Why a DICOM file cannot be used (``reason``) and what to do (``fix``); raised as DataError by
    :func:`read_dicom`, returned as a reason by the screening of image folders."""

    def __init__(self, reason: str, fix: str):
        super().__init__(f"{reason}; {fix}")
        self.reason, self.fix = reason, fix


def read_dicom(path: str | os.PathLike, window: Window | str | None = None) -> np.ndarray:
    """The image of a single-frame DICOM file as uint8, ``(h, w)`` (windowed) or ``(h, w, 3)`` (colour)."""
    try:
        return decode_dicom(path, parse_window(window))
    except DicomProblem as problem:
        raise DataError(f"cannot read DICOM file {os.path.abspath(path)}: {problem}") from problem


def decode_dicom(path, window: Window | str | None) -> np.ndarray:
    """:func:`read_dicom`'s work; raises :class:`DicomProblem` for anything it cannot use."""
    pydicom = _import_pydicom()
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(os.fspath(path))
    except InvalidDicomError as exc:
        raise DicomProblem(f"not a DICOM file ({exc})", "pass DICOM Part 10 files, or rename the file") from None
    except Exception as exc:  # pydicom raises many kinds for a damaged header
        raise DicomProblem(f"truncated or damaged DICOM header ({type(exc).__name__}: {exc})",
                           "re-export the file") from None
    if "PixelData" not in ds:
        raise DicomProblem("the file holds no image (no PixelData element)", "pass DICOM image files")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise DicomProblem(f"it has {frames} frames, and headstart reads single images",
                           "export the frames you want as single-frame DICOM or PNG files")
    pixels = _pixel_array(ds)
    if int(ds.get("SamplesPerPixel", 1)) == 3:
        return _colour(pixels, ds)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DicomProblem(f"photometric interpretation {photometric} is not supported (greyscale MONOCHROME1/2 "
                           f"and RGB/YBR colour are)", "convert the file to RGB or greyscale")
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    values = pixels.astype(np.float64) * slope + intercept
    grey = apply_window(values, window_for(values, window, _file_window(ds)))
    return 255 - grey if photometric == "MONOCHROME1" else grey


def _pixel_array(ds) -> np.ndarray:
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    try:
        return ds.pixel_array
    except Exception as exc:  # pydicom: RuntimeError (no decoder), ValueError (truncated), NotImplementedError
        text = str(exc)
        compressed = syntax is not None and syntax.is_compressed
        if compressed and ("missing dependencies" in text or "plugins" in text or "decod" in text.lower()):
            raise DicomProblem(f"its pixel data is compressed as {syntax.name} and no installed decoder can read it "
                               f"(pydicom: {' '.join(text.split())})",
                               f"install the decoders with `{DECODERS}`, or re-export the file uncompressed") from None
        raise DicomProblem(f"the pixel data cannot be decoded ({type(exc).__name__}: {text})",
                           "the file is truncated or damaged; re-export it") from None


def _file_window(ds) -> Window | None:
    """The file's own WindowCenter / WindowWidth (the first pair when several are given)."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    first = lambda v: v[0] if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue" else v
    try:
        window = Window(float(first(center)), float(first(width)))
    except (TypeError, ValueError, IndexError):
        return None  # an empty or unreadable window element: the image's own range is used instead
    return window if window.width >= 1 else None


def _colour(pixels: np.ndarray, ds) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return np.round(pixels / 257.0).astype(np.uint8)
    raise DicomProblem(f"colour pixel data of type {pixels.dtype} ({ds.get('BitsAllocated')} bits) is not supported "
                       f"(8 or 16 bits are)", "re-export the file as 8-bit RGB")


def _import_pydicom():
    try:
        import pydicom
    except ImportError:
        raise DicomProblem("pydicom is not installed", "install it with pip install 'headstart[medical]'") from None
    return pydicom


# --------------------------------------------------------------------------- the setting on a model


def set_window(target, window) -> None:
    """Make ``target`` (a backbone or a pixel baseline) decode images with ``window``; ``load_image`` reads it."""
    target.window = parse_window(window)


def window_of(target) -> Window | str | None:
    return getattr(target, "window", None)


def window_text(window) -> str | None:
    """The canonical text of a window (``'40,400'``, ``'minmax'`` or None), for configs, cache keys and JSON."""
    window = parse_window(window)
    return str(window) if isinstance(window, Window) else window
