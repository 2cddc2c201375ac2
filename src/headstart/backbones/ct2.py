"""A reader of CTranslate2's ``model.bin``: variable name → numpy array, no ctranslate2 needed.

CTranslate2 (OpenNMT; Klein et al.) stores a converted model as one binary file. The layout read
here (format version 6, written by ctranslate2 ≥ 3; all integers little-endian)::

    uint32  format version                     (6)
    string  spec name                          ("WhisperSpec")
    uint32  spec revision                      (3 for WhisperSpec)
    uint32  variable count
    per variable:
        string  name                           ("encoder/conv1/weight")
        uint8   rank, then rank x uint32 dims  (rank 0: a scalar such as "encoder/num_heads")
        uint8   dtype                          (0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16)
        uint32  byte count, then the raw data  (C order; byte count = prod(dims) x dtype size)
    uint32  alias count
    per alias: string alias, string target     (the alias names the same array as the target)

    string = uint16 length (NUL included) + bytes ending in NUL

:func:`read_ct2` returns a :class:`Ct2Model` whose ``variables`` maps every name (aliases resolved
to their target's array) to a numpy array; float16 and bfloat16 arrays become float32 on request.
A file of another format version, another spec, an unknown dtype or cut short is refused with an
error naming the file, the value and what to do.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import WeightsNotFoundError

FORMAT_VERSIONS = (6,)
DTYPES = {0: np.dtype("<f4"), 1: np.dtype("i1"), 2: np.dtype("<i2"), 3: np.dtype("<i4"), 4: np.dtype("<f2"),
          5: np.dtype("<u2")}  # bfloat16: its bits as uint16, widened to float32 below
DTYPE_NAMES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}


class Ct2FormatError(WeightsNotFoundError):
    """A ``model.bin`` this reader does not understand (another version, spec or dtype; cut short)."""


@dataclass
class Ct2Model:
    path: Path
    version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    dtypes: dict[str, str] = field(default_factory=dict)  # stored dtype per name, before any widening
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> target


@dataclass
class _Entry:
    dims: tuple[int, ...]
    dtype: int
    offset: int
    nbytes: int


class _Cursor:
    """Reads the header fields of one open file, saying where the file ends early."""

    def __init__(self, stream, path: Path, fix: str):
        self.stream, self.path, self.fix = stream, path, fix

    def take(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise Ct2FormatError(f"{self.path} ends early: wanted {n} bytes at offset {self.stream.tell() - len(data)}, "
                                 f"found {len(data)}; the file is cut short or not a CTranslate2 model.bin. {self.fix}")
        return data

    def uint(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = self.take(self.uint("H"))
        return raw.rstrip(b"\0").decode("utf-8", errors="replace")


def read_ct2(path, *, spec: str | None = None, prefix: str = "", float32: bool = True,
             fix: str = "convert the model again with ctranslate2's converter (ctranslate2 >= 3)") -> Ct2Model:
    """Read the variables of CTranslate2 ``model.bin`` at ``path`` whose names start with ``prefix``.

    ``spec``: the spec name expected (e.g. ``"WhisperSpec"``); another is refused. ``float32``:
    float16/bfloat16 arrays come back as float32 (else as stored; bfloat16 is always widened, numpy
    has no such type). ``fix`` ends every error: what the user should do about a bad file.
    """
    path = Path(path)
    with open(path, "rb") as stream:
        cursor = _Cursor(stream, path, fix)
        version = cursor.uint("I")
        if version not in FORMAT_VERSIONS:
            raise Ct2FormatError(f"{path} is CTranslate2 format version {version}; this reader knows version(s) "
                                 f"{', '.join(map(str, FORMAT_VERSIONS))} only (or the file is not a model.bin). {fix}")
        spec_name, revision = cursor.string(), cursor.uint("I")
        if spec is not None and spec_name != spec:
            raise Ct2FormatError(f"{path} holds a {spec_name!r} model (revision {revision}) where a {spec!r} was "
                                 f"expected; point to the right model's model.bin. {fix}")
        entries = {name: entry for name, entry in _headers(cursor, fix)}
        aliases = {}
        for _ in range(cursor.uint("I")):
            alias, target = cursor.string(), cursor.string()
            if target not in entries:
                raise Ct2FormatError(f"{path}: alias {alias!r} names {target!r}, which the file does not hold. {fix}")
            aliases[alias] = target
        wanted = {n for n in entries if n.startswith(prefix)} | {t for a, t in aliases.items() if a.startswith(prefix)}
        arrays = {name: _array(stream, path, name, entries[name], float32) for name in sorted(wanted)}
    names = [n for n in arrays if n.startswith(prefix)] + [a for a in aliases if a.startswith(prefix)]
    variables = {name: arrays[aliases.get(name, name)] for name in names}
    dtypes = {name: DTYPE_NAMES[entries[aliases.get(name, name)].dtype] for name in names}
    if prefix and not variables:
        raise Ct2FormatError(f"{path} holds no variable whose name starts with {prefix!r}; it is a {spec_name!r} "
                             f"model with {len(entries)} variables. {fix}")
    return Ct2Model(path, version, spec_name, revision, variables, dtypes, aliases)


def _headers(cursor: _Cursor, fix: str):
    """Yield ``(name, _Entry)`` per variable, skipping over the data."""
    for _ in range(cursor.uint("I")):
        name = cursor.string()
        dims = tuple(cursor.uint("I") for _ in range(cursor.uint("B")))
        dtype, nbytes = cursor.uint("B"), cursor.uint("I")
        if dtype not in DTYPES:
            raise Ct2FormatError(f"{cursor.path}: variable {name!r} has dtype code {dtype}; this reader knows "
                                 f"{', '.join(f'{k} ({v})' for k, v in DTYPE_NAMES.items())}. {fix}")
        expected = int(np.prod(dims, dtype=np.int64)) * DTYPES[dtype].itemsize
        if nbytes != expected:
            raise Ct2FormatError(f"{cursor.path}: variable {name!r} of shape {dims} and dtype {DTYPE_NAMES[dtype]} "
                                 f"says {nbytes} bytes where that shape takes {expected}. {fix}")
        offset = cursor.stream.tell()
        cursor.stream.seek(nbytes, 1)
        yield name, _Entry(dims, dtype, offset, nbytes)


def _array(stream, path: Path, name: str, entry: _Entry, float32: bool) -> np.ndarray:
    stream.seek(entry.offset)
    data = stream.read(entry.nbytes)
    if len(data) != entry.nbytes:
        raise Ct2FormatError(f"{path} ends inside variable {name!r}: {len(data)} of its {entry.nbytes} bytes are "
                             f"there; the file is cut short (an interrupted download or join): install it again")
    array = np.frombuffer(data, dtype=DTYPES[entry.dtype]).reshape(entry.dims)
    if entry.dtype == 5:  # bfloat16: the high half of a float32
        return (array.astype(np.uint32) << 16).view(np.float32)
    if float32 and entry.dtype == 4:
        return array.astype(np.float32)
    return array.astype(array.dtype.newbyteorder("="))  # a writable copy in native order
