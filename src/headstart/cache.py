"""FeatureCache: pooled features of a frozen backbone, computed once and kept on disk.

Each input is keyed by a hash of its *content* (file bytes, pixels or text), and each cache folder
by the backbone's name, a fingerprint of its weights and its preprocessing. Features are stored per
layer group, so ranking layers, linear probing and repeated fits over any subset of the same
inputs all reuse one forward pass. Files are safetensors written atomically (write, then rename):
a crash leaves the cache as it was, never half a file.

Under a launcher (:mod:`headstart.distributed`) every process extracts the features it needs itself
and only the main process writes chunks. Sharding the extraction would need every process to agree
on which inputs are missing, and each reads the folder at its own moment (another fit may be writing
to it), so a disagreement would leave one process waiting forever; extraction is done once per input
and, with one accelerator per process, takes the same wall time on every process.

Layout: ``<root>/<backbone-key>/chunk-<id>.safetensors`` holding ``hashes`` (m, 32) uint8 and one
``layer:<name>`` (m, d) float32 tensor per cached layer.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

from .atomic import write_atomic, write_json
from .backbones import Backbone
from .data import window_of, window_text
from .distributed import is_main
from .model import progress_bar


CHUNK_SIZE = 512  # inputs per cache file


def default_cache_dir() -> Path:
    root = os.environ.get("HEADSTART_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "headstart")
    return Path(root) / "features"


def content_hash(item, modality: str) -> bytes:
    """sha256 of what an input *is*: the same picture or sentence hashes the same wherever it lives."""
    digest = hashlib.sha256()
    if isinstance(item, str) and modality != "text" and os.path.isfile(item):
        digest.update(b"file:")
        with open(item, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    elif isinstance(item, str):
        digest.update(b"text:" + item.encode("utf-8", "surrogatepass"))
    elif isinstance(item, np.ndarray):
        digest.update(f"array:{item.dtype}:{item.shape}:".encode())
        digest.update(np.ascontiguousarray(item).tobytes())
    elif hasattr(item, "tobytes") and hasattr(item, "mode"):  # a PIL image
        digest.update(f"pil:{item.mode}:{item.size}:".encode())
        digest.update(item.tobytes())
    else:
        digest.update(f"repr:{type(item).__name__}:{item!r}".encode())
    return digest.digest()


def open_cache(cache_dir) -> "FeatureCache":
    """The cache a fit's ``cache_dir`` option names: None, the default folder ($HEADSTART_CACHE or
    ~/.cache/headstart); "none", memory only (a new, empty one each call); else that folder."""
    if cache_dir is None:
        return FeatureCache("default")
    return FeatureCache(None if str(cache_dir).lower() == "none" else cache_dir)


class FeatureCache:
    """Disk-backed (``directory``) or memory-only (``directory=None``) store of pooled features."""

    def __init__(self, directory: str | os.PathLike | None = "default"):
        if directory == "default":
            directory = default_cache_dir()
        self.directory = Path(directory) if directory else None
        self._memory: dict[str, dict[str, dict[bytes, np.ndarray]]] = {}
        self._chunks_read: dict[str, set[str]] = {}
        self.last_computed = 0  # inputs run through the backbone by the last call (for tests/bench)
        self.last_inference_note = ""  # how the last computing call ran the backbone (BatchNorm folded or not, why)
        self._records: dict[tuple[str, str], dict] = {}

    def recall(self, kind: str, key: str) -> dict | None:
        """A small JSON record kept beside the features (``kind``: e.g. ``"C-search"``), or None.

        Derived results that cost more than reading them, keyed by their inputs' content: the
        linear probe's C search on cached features is most of a second fit on the same images."""
        if (kind, key) in self._records:
            return self._records[(kind, key)]
        if self.directory is None:
            return None
        try:
            record = json.loads((self.directory / kind / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):  # absent, or unreadable: computed again and rewritten
            return None
        self._records[(kind, key)] = record
        return record

    def remember(self, kind: str, key: str, record: dict) -> None:
        self._records[(kind, key)] = record
        if self.directory is not None and is_main():
            (self.directory / kind).mkdir(parents=True, exist_ok=True)
            write_json(self.directory / kind / f"{key}.json", record)

    def backbone_key(self, backbone: Backbone) -> str:
        description = {
            "name": backbone.name,
            "weights": backbone.weights_fingerprint(),
            "preprocess": backbone.preprocess_signature(),
        }
        window = window_text(window_of(backbone))
        if window is not None:  # other grey levels, other features; absent when unset, so older keys stay valid
            description["window"] = window
        blob = json.dumps(description, sort_keys=True).encode()
        return f"{backbone.name.replace('/', '_').replace(':', '_')}-{hashlib.sha256(blob).hexdigest()[:16]}"

    def features(
        self,
        backbone: Backbone,
        items: Sequence,
        layers: Sequence[str] | None = None,
        *,
        batch_size: int = 64,
        progress: bool = False,
        disposable: bool = False,
    ) -> dict[str, np.ndarray]:
        """``{layer: (len(items), d) float32}``; computes only what is not cached yet.

        ``disposable``: the caller will not train or reuse ``backbone`` (ranking builds its own), so
        BatchNorm folding may change it instead of a copy.
        """
        layers = list(layers) if layers else [backbone.layer_names[-1]]
        backbone.check_layers(layers)
        key = self.backbone_key(backbone)
        hashes = [content_hash(item, backbone.modality) for item in items]
        store = self._load(key, set(hashes))
        missing = sorted({i for i, h in enumerate(hashes) for layer in layers if h not in store.get(layer, {})})
        self.last_computed = len(missing)
        if missing:  # one folded copy for every chunk
            runner, self.last_inference_note = inference_runner(backbone, [items[i] for i in missing],
                                                                disposable=disposable)
        # One chunk per block: a crash during a long extraction keeps every finished block.
        for start in range(0, len(missing), CHUNK_SIZE):
            block = missing[start : start + CHUNK_SIZE]
            computed = _extract(runner, [items[i] for i in block], layers, batch_size=batch_size, progress=progress)
            self._keep_new(key, store, [hashes[i] for i in block], computed)
        return {layer: np.stack([store[layer][h] for h in hashes]) for layer in layers}

    def _keep_new(self, key: str, store, hashes: list[bytes], computed: dict[str, np.ndarray]) -> None:
        """Store (and write) only the rows of each layer not held yet: the first features computed for
        an input stay its features. An input is recomputed when another of the asked layers lacks it,
        and the new rows can differ in the last float bits (a BatchNorm-folded pass or not, on 5e-5 of
        an EfficientNet feature): overwriting them changed a later fit's linear probe, and through
        LP-FT's fine-tune a test accuracy by 3 points, with the fit, data and seed unchanged."""
        new_rows: dict[tuple[int, ...], list[str]] = {}  # rows new to a layer -> the layers they are new to
        for layer in computed:
            bucket, rows = store.setdefault(layer, {}), []
            for i, h in enumerate(hashes):
                if h not in bucket:  # checked row by row: an input given twice is kept (and written) once
                    bucket[h] = computed[layer][i]
                    rows.append(i)
            if rows:
                new_rows.setdefault(tuple(rows), []).append(layer)
        for rows, layers in new_rows.items():  # mostly one group: every layer new for the same inputs
            picked = list(rows)
            self._write_chunk(key, [hashes[i] for i in picked], {layer: computed[layer][picked] for layer in layers})

    def _load(self, key: str, needed: set[bytes]) -> dict[str, dict[bytes, np.ndarray]]:
        """The features of ``key`` held in memory, after reading the chunks that hold any ``needed`` input.

        The cache outlives any one data set, so a folder can hold many chunks this call does not
        need: only each chunk's small hash list is read to tell, and its feature matrices only if so.
        """
        store = self._memory.setdefault(key, {})
        done = self._chunks_read.setdefault(key, set())
        folder = self.directory / key if self.directory else None
        if not (folder and folder.is_dir()):
            return store
        for chunk in sorted(folder.glob("chunk-*.safetensors"), key=lambda p: (p.stat().st_mtime_ns, p.name)):
            if chunk.name in done:
                continue
            try:
                with safe_open(str(chunk), framework="numpy") as handle:
                    hashes = [bytes(row) for row in handle.get_tensor("hashes")]
                    if needed.isdisjoint(hashes):
                        continue
                    for name in handle.keys():
                        if name != "hashes":  # oldest chunk first, and the first row of an input wins (_keep_new)
                            bucket = store.setdefault(name.removeprefix("layer:"), {})
                            for h, row in zip(hashes, handle.get_tensor(name)):
                                bucket.setdefault(h, row)
            except Exception:  # a foreign or damaged file: ignore it, what it held is recomputed
                continue
            done.add(chunk.name)
        return store

    def _write_chunk(self, key: str, hashes: list[bytes], computed: dict[str, np.ndarray]) -> None:
        if not self.directory or not is_main():  # the other processes computed the same rows; one copy is written
            return
        folder = self.directory / key
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"hashes": np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), 32)}
        tensors.update({f"layer:{name}": np.ascontiguousarray(m, dtype=np.float32) for name, m in computed.items()})
        write_atomic(folder / f"chunk-{uuid.uuid4().hex}.safetensors", lambda temporary: save_file(tensors, temporary))


def extract_features(
    backbone: Backbone, items: Sequence, layers: Sequence[str], *, batch_size: int = 64, progress: bool = False
) -> dict[str, np.ndarray]:
    """One inference-mode pass over ``items``; ``{layer: (n, d) float32}``, rows in the order of ``items``.

    From :data:`~headstart.backbones.fold.FOLD_MIN_INPUTS` inputs on, the pass runs on a copy of
    the backbone with its BatchNorms folded into their convolutions (checked equal on the first
    inputs; see :mod:`headstart.backbones.fold`); ``backbone`` itself is never changed.
    """
    runner, _ = inference_runner(backbone, items)
    return _extract(runner, items, layers, batch_size=batch_size, progress=progress)


def inference_runner(backbone: Backbone, items: Sequence, *, disposable: bool = False) -> tuple[Backbone, str]:
    """The backbone to extract ``items`` with, and why: a BatchNorm-folded copy when that pays
    (``disposable``: the caller will not use ``backbone`` again, so it is folded itself, not a copy)."""
    from .backbones.fold import FOLD_MIN_INPUTS, folded_for_inference

    if len(items) < FOLD_MIN_INPUTS:
        return backbone, f"not folded: {len(items)} inputs, folding pays from {FOLD_MIN_INPUTS}"
    probe = backbone.preprocess(list(items[:4]))
    return folded_for_inference(backbone, {k: v.to(_device_of(backbone)) for k, v in probe.items()},
                                in_place=disposable)


def _device_of(backbone: Backbone) -> torch.device:
    return next((p.device for p in backbone.parameters()), torch.device("cpu"))


def _extract(backbone: Backbone, items: Sequence, layers: Sequence[str], *, batch_size: int,
             progress: bool) -> dict[str, np.ndarray]:
    was_training = backbone.training
    backbone.eval()
    device = _device_of(backbone)
    batches = backbone.inference_batches(items, batch_size)
    outputs: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for positions in progress_bar(batches, desc=f"features ({backbone.name})", enabled=progress):
            batch = backbone.preprocess([items[i] for i in positions])
            batch = {k: v.to(device) for k, v in batch.items()}
            pooled = backbone.forward_features(batch, layers=list(layers))
            for layer in layers:
                rows = pooled[layer].float().cpu().numpy()
                if layer not in outputs:
                    outputs[layer] = np.empty((len(items), rows.shape[1]), dtype=np.float32)
                outputs[layer][positions] = rows
    backbone.train(was_training)
    return outputs
