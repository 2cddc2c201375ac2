"""Audio files and in-memory waveforms: reading, checking, and finding them in folders and tables.

Audio items stay lazy: a file path (str) is decoded only when a backbone preprocesses it. Loading a
dataset only checks that every file decodes to at least one sample (unreadable, empty and
zero-byte files are skipped and reported like unreadable images, or raise with ``strict=True``).

In-memory waveforms are 1-D float arrays held at :data:`ARRAY_SAMPLE_RATE` (16 kHz): ``from_arrays``
resamples arrays given at another ``sample_rate`` once, at load time, so an array item never needs
its rate carried beside it. :func:`load_audio` turns any audio item into a mono float32 waveform at
the rate a backbone asks for (``scipy.signal.resample_poly``); the backbone then trims or zero-pads
it to the length it needs.

Reading needs ``soundfile`` (``pip install headstart[audio]``); nothing here imports torch.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from headstart.errors import ConfigError, DataError, DataPathError

from .images import is_image_path
from .screen import check_no_loose_files, screen_files, walk_class_folders
from .tables import _read_frame

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".mp3")
AUDIO_COLUMNS = ("audio", "audio_path", "audio_file", "wav", "path", "file", "filepath", "filename")
ARRAY_SAMPLE_RATE = 16_000  # the rate of every in-memory waveform item


def is_audio_path(name: str | os.PathLike) -> bool:
    """True when ``name`` ends in one of :data:`AUDIO_EXTENSIONS` (case-insensitive)."""
    return str(name).lower().endswith(AUDIO_EXTENSIONS)


def _soundfile():
    try:
        import soundfile
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise DataError(
            f"reading audio files needs soundfile: pip install 'headstart[audio]' (or pip install soundfile) ({exc})"
        ) from exc
    return soundfile


# --------------------------------------------------------------------------- decoding


def resample(wave: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``), float32; a no-op at equal rates."""
    if int(source_rate) == int(target_rate) or len(wave) == 0:
        return np.asarray(wave, dtype=np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(int(target_rate), int(source_rate))
    return resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)


def to_mono_float(data: np.ndarray) -> np.ndarray:
    """Average channels ``(samples, channels)`` to mono; integers scaled to [-1, 1]; float32."""
    data = np.asarray(data)
    if data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        data = (data.astype(np.float64) - (info.max + info.min + 1) / 2) / (info.max + 1 - (info.max + info.min + 1) / 2)
    if data.ndim == 2:
        data = data.mean(axis=1)
    return np.nan_to_num(np.asarray(data, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def read_audio_file(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """``(mono float32 waveform, sample rate)`` of an audio file."""
    sf = _soundfile()
    path = Path(path)
    if not path.is_file():
        raise DataPathError(f"audio file not found: {path.absolute()}.")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise DataError(f"cannot read audio {path.absolute()}: {describe_audio_error(exc)}. Delete or re-export the file.") from exc
    return to_mono_float(data), int(rate)


def load_audio(item, sample_rate: int) -> np.ndarray:
    """Any audio item (a file path, or a 1-D array at 16 kHz) as a mono float32 waveform at ``sample_rate``."""
    if isinstance(item, (str, os.PathLike)):
        wave, rate = read_audio_file(item)
    elif isinstance(item, np.ndarray) and item.ndim in (1, 2):
        wave, rate = to_mono_float(item), ARRAY_SAMPLE_RATE
    else:
        raise DataError(
            f"cannot use a {type(item).__name__} as audio; pass a file path (.wav .flac .ogg ...) or a 1-D "
            f"float array sampled at {ARRAY_SAMPLE_RATE} Hz."
        )
    return resample(wave, rate, sample_rate)


def fit_length(wave: np.ndarray, length: int, *, rng: np.random.Generator | None = None) -> tuple[np.ndarray, bool]:
    """Trim to ``length`` (the centre window, or a random one when ``rng`` is given) or zero-pad at the
    end; also return whether the clip was cut."""
    if len(wave) > length:
        start = int(rng.integers(0, len(wave) - length + 1)) if rng is not None else (len(wave) - length) // 2
        return wave[start : start + length], True
    return np.pad(wave, (0, length - len(wave))), False

# --------------------------------------------------------------------------- checking files


def describe_audio_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "format not recognised" in text.lower() or "unknown format" in text.lower():
        return "not a recognised audio format (soundfile/libsndfile cannot identify it)"
    return f"corrupt or unreadable audio ({type(exc).__name__}: {text})"


def audio_problem(path: str | os.PathLike) -> str | None:
    """Decode the file at ``path``; return why it cannot be used, or None if it is fine."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
        sf = _soundfile()
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
        if data.shape[0] == 0:
            return "no audio samples (0 frames)"
    except FileNotFoundError:
        return "file not found"
    except DataError:
        raise
    except Exception as exc:  # any decoder failure is reported, never raised from here
        return describe_audio_error(exc)
    return None


def screen_audio(paths: list[str], wheres: list[str], strict: bool, stacklevel: int):
    """Check every file; return ``(indices that decode, [SkippedInput])``, as images are screened."""
    return screen_files(paths, wheres, audio_problem, singular="audio", plural="audio files",
                        hint="audio files (WAV, FLAC, OGG)", strict=strict, stacklevel=stacklevel + 1)


# --------------------------------------------------------------------------- folders and tables


def is_audio_folder(root: Path) -> bool:
    """True when ``root/<class>/...`` holds audio files and no images (then it is an audio dataset)."""
    found_audio = False
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            if is_image_path(name):
                return False
            found_audio = found_audio or is_audio_path(name)
    return found_audio


def list_audio_folder(root: Path) -> tuple[list[str], list[str]]:
    """``(paths, labels)`` for ``root/<class>/<audio file>``, sorted by path (hidden entries ignored)."""
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    check_no_loose_files(root, entries, is_audio_path, kind="audio file", placeholder="<file>", example="yes/1.wav")
    paths, labels, _ = walk_class_folders(root, entries, is_audio_path)
    if not paths:
        raise DataPathError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found in {root}/<class>/<file>.")
    return paths, labels


def find_audio_column(path: Path) -> str | None:
    """The table's column of audio file paths: one named like ``audio``/``path``/``file`` whose values
    all end in an audio extension; None when there is none (the table is text or images)."""
    df = _read_frame(path)
    by_key = {str(c).strip().lower(): str(c) for c in reversed(list(df.columns))}
    for key in AUDIO_COLUMNS:
        column = by_key.get(key)
        if column is None:
            continue
        values = df[column].dropna().astype(str).str.strip()
        if key.startswith("audio") or key == "wav" or (len(values) and all(is_audio_path(v) for v in values)):
            return column
    return None


# --------------------------------------------------------------------------- in-memory arrays


def audio_items(X, name: str, *, modality: str | None, sample_rate: int | None):
    """Audio items from ``from_arrays`` input, or None when ``X`` is not audio (modality not forced).

    Inferred as audio: a list of 1-D float arrays whose lengths differ (equal lengths stay a 2-D
    feature matrix, as before), or a list of paths to existing audio files. ``modality="audio"``
    forces it: then a 2-D array is read as one clip per row and equal-length lists are audio too.
    Arrays are taken to be sampled at ``sample_rate`` (default 16 kHz) and resampled to 16 kHz here.
    """
    if modality not in (None, "audio"):
        raise ConfigError(f"modality={modality!r}: only 'audio' can be forced (other modalities are inferred)")
    if isinstance(X, np.ndarray) and X.ndim == 0:
        return None
    forced = modality == "audio"
    rate = int(sample_rate or ARRAY_SAMPLE_RATE)
    if sample_rate is not None and not forced and not _ragged_float_list(X):
        forced = True  # giving a sample rate says the arrays are waveforms
    if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
        if not forced:
            return None
        if X.ndim == 1:
            X = [X]
        elif X.ndim != 2:
            raise DataError(f"{name} has shape {X.shape}; audio arrays must be (clips, samples) or a list of 1-D clips.")
        X = list(X)
    if not isinstance(X, (list, tuple, np.ndarray)) or len(X) == 0:
        return None
    items = list(X)
    if all(isinstance(x, (str, os.PathLike)) for x in items):
        strings = [os.fspath(x).strip() for x in items]
        if not all(is_audio_path(s) for s in strings):
            if forced:
                bad = next(s for s in strings if not is_audio_path(s))
                raise DataError(f"{name} holds {bad!r}, not an audio file path ({', '.join(AUDIO_EXTENSIONS)}).")
            return None
        missing = [s for s in strings if not os.path.isfile(s)]
        if missing:
            raise DataError(
                f"{name} looks like audio paths, but {missing[0]!r} is not a file (looked at "
                f"{Path(missing[0]).absolute()}). Relative paths are read from the current folder, {Path.cwd()}."
            )
        return [str(Path(s).absolute()) for s in strings]
    if not forced and not _ragged_float_list(items):
        return None
    waves = []
    for i, x in enumerate(items):
        a = np.asarray(x)
        if a.ndim != 1 or a.dtype.kind not in "iuf" or len(a) == 0:
            raise DataError(
                f"{name}[{i}] has shape {a.shape} and dtype {a.dtype}; an audio clip must be a non-empty 1-D "
                "numeric array (mono samples)."
            )
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise DataError(f"{name}[{i}] contains NaN or inf; audio samples must be finite.")
        waves.append(resample(to_mono_float(a), rate, ARRAY_SAMPLE_RATE))
    return waves


def _ragged_float_list(X) -> bool:
    if not isinstance(X, (list, tuple)) or len(X) < 2:
        return False
    if not all(isinstance(x, np.ndarray) and x.ndim == 1 and x.dtype.kind == "f" for x in X):
        return False
    return len({len(x) for x in X}) > 1
