"""Decoded audio clips kept across epochs, shared by the audio backbones (:mod:`.ge2e`, :mod:`.hf_audio`)."""

from __future__ import annotations

import os


class WaveMemo:
    """Decoded clips of audio *files*, kept across epochs up to ``max_bytes``.

    A fine-tune reads every training clip once per epoch, and reading, resampling and trimming a
    clip costs more than the speaker encoder's forward pass over it (docs/benchmarks.md, "Why these
    defaults" of the speed section). The key is the path with its size and modification time, so
    an edited file is read again; in-memory arrays are not kept (they are cheap to reuse, and have
    no stable key).
    """

    def __init__(self, max_bytes: int = 512 * 2**20):
        self.max_bytes, self.bytes, self._store = max_bytes, 0, {}

    def get(self, item, decode):
        if not isinstance(item, (str, os.PathLike)):
            return decode(item)
        try:
            stat = os.stat(item)
        except OSError:
            return decode(item)  # decode raises the clear error for a missing file
        key = (os.fspath(item), stat.st_size, stat.st_mtime_ns)
        wave = self._store.get(key)
        if wave is None:
            wave = decode(item)
            if self.bytes + wave.nbytes <= self.max_bytes:
                self._store[key] = wave
                self.bytes += wave.nbytes
        return wave
