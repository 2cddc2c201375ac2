"""Hugging Face audio encoders (``hf:ID`` or a local model directory whose config is audio).

wav2vec 2.0 (Baevski et al. 2020), HuBERT (Hsu et al. 2021), WavLM (Chen et al. 2022),
data2vec-audio (Baevski et al. 2022), Whisper's encoder (Radford et al. 2022) and the Audio
Spectrogram Transformer (Gong et al. 2021): the model's ``AutoFeatureExtractor`` and ``AutoModel``
(Whisper: the encoder only). :func:`is_audio_config` tells these configs from text ones.

Input: audio items (file paths, or 1-D float arrays at 16 kHz; see :mod:`headstart.data.audio`),
resampled to the extractor's rate. A clip longer than ``max_seconds`` is cut to that window (the
centre at evaluation, a random one when ``train=True``); :meth:`count_truncated` says how many are.

Layer groups, input to output: ``feature_encoder`` (everything before the first transformer layer:
the convolutional feature encoder or the patch embeddings), then ``layer.0`` … ``layer.N``. The
final layer norm belongs to the last group. Features are the frames of a group's output,
mean-pooled under the frame mask (padding frames excluded).

Shapes for a batch of ``n`` clips::

    raw-waveform encoders: input_values (n, samples) + attention_mask (n, samples), padded to the longest
    Whisper:               input_features (n, 80 or 128 mel bins, 3000 frames), padded to 30 s
    AST:                   input_values (n, 1024 frames, 128 mel bins)
    each group's output (n, frames, hidden) -> masked mean over frames -> features (n, hidden)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..data.audio import fit_length, load_audio
from ..errors import ConfigError
from .base import Backbone, LayerGroup
from .hf_text import _find_attr
from .info import ModelInfo
from .wave_memo import WaveMemo

AUDIO_MODEL_TYPES = (
    "wav2vec2", "wav2vec2-conformer", "wav2vec2-bert", "hubert", "wavlm", "data2vec-audio", "sew", "sew-d",
    "unispeech", "unispeech-sat", "whisper", "audio-spectrogram-transformer", "clap_audio_model", "clap",
)
_AUDIO_ARCHITECTURE_WORDS = ("Wav2Vec2", "Hubert", "WavLM", "Whisper", "AudioSpectrogram", "Data2VecAudio",
                             "UniSpeech", "SEW", "Speech", "Audio")
_LAYER_PATHS = ("encoder.layers", "encoder.layer", "layers")
_FINAL_NORMS = ("layernorm", "layer_norm", "encoder.layer_norm")


def is_audio_config(config) -> bool:
    """Whether a transformers config describes an audio encoder: by ``model_type``, else ``architectures``."""
    if getattr(config, "model_type", None) in AUDIO_MODEL_TYPES:
        return True
    return any(word in arch for arch in (getattr(config, "architectures", None) or []) for word in _AUDIO_ARCHITECTURE_WORDS)


class HFAudioBackbone(Backbone):
    """A transformers audio encoder plus its feature extractor (see the module docstring)."""

    def __init__(self, info: ModelInfo, model, feature_extractor, *, pretrained: bool, max_seconds: float | None = None):
        super().__init__(info, pretrained=pretrained)
        self.model = model
        self.feature_extractor = feature_extractor
        self.sample_rate = int(getattr(feature_extractor, "sampling_rate", 16_000))
        self.model_type = getattr(model.config, "model_type", "")
        default = float(getattr(feature_extractor, "chunk_length", 0) or 10.0)
        self.max_seconds = float(max_seconds or info.extra.get("max_seconds") or default)
        self.max_samples = int(round(self.max_seconds * self.sample_rate))
        self._groups = self._build_groups()
        self._rng = np.random.default_rng(0)
        self._waves = WaveMemo()

    def _build_groups(self) -> list[LayerGroup]:
        layers = next((l for p in _LAYER_PATHS if (l := _find_attr(self.model, p)) is not None), None)
        if layers is None or not isinstance(layers, nn.ModuleList) or not len(layers):
            raise ConfigError(
                f"headstart cannot find the transformer layers of {self.info.name} ({type(self.model).__name__}); "
                f"it looks for one of {', '.join(_LAYER_PATHS)}. Use a wav2vec2 / HuBERT / WavLM / Whisper / AST "
                "encoder, or open an issue naming the model"
            )
        in_layers = {id(p) for p in layers.parameters()}
        final = [m for name in _FINAL_NORMS if (m := _find_attr(self.model, name)) is not None
                 and isinstance(m, nn.LayerNorm) and self._norm_is_final(name)]
        in_final = {id(p) for m in final for p in m.parameters()}
        first = [p for p in self.model.parameters() if id(p) not in in_layers and id(p) not in in_final]
        front = _modules_outside(self.model, [layers, *final])
        groups = [LayerGroup("feature_encoder", front or [self.model], layers[0], first)]
        for i, layer in enumerate(layers):
            params = list(layer.parameters())
            modules = [layer]
            if i == len(layers) - 1:
                params += [p for m in final for p in m.parameters()]
                modules += final
            groups.append(LayerGroup(f"layer.{i}", modules, layer, params))
        return groups

    def _norm_is_final(self, name: str) -> bool:
        # wav2vec2-style encoders apply encoder.layer_norm before the layers unless do_stable_layer_norm
        if name == "encoder.layer_norm":
            return bool(getattr(self.model.config, "do_stable_layer_norm", False))
        return True

    def preprocess_signature(self) -> dict:
        return {"feature_extractor": type(self.feature_extractor).__name__, "sample_rate": self.sample_rate,
                "max_seconds": self.max_seconds, "pooling": "masked-mean", "crop": "centre"}

    def preprocess(self, items: Sequence, *, train: bool = False) -> dict[str, torch.Tensor]:
        waves, lengths = [], []
        for item in items:
            wave = self._waves.get(item, lambda path: load_audio(path, self.sample_rate))
            if len(wave) > self.max_samples:
                wave, _ = fit_length(wave, self.max_samples, rng=self._rng if train else None)
            if len(wave) < 400:  # the conv feature encoders need a few hundred samples to give one frame
                wave = np.pad(wave, (0, 400 - len(wave)))
            waves.append(wave)
            lengths.append(len(wave))
        kwargs = {"sampling_rate": self.sample_rate, "return_tensors": "pt"}
        if self.model_type == "whisper":
            encoded = self.feature_extractor(waves, return_attention_mask=False, **kwargs)
            batch = {"input_features": encoded["input_features"]}
            total = float(self.feature_extractor.n_samples)
        elif self.model_type == "audio-spectrogram-transformer":  # a fixed-size spectrogram; every patch counts
            encoded = self.feature_extractor(waves, **kwargs)
            batch = {"input_values": encoded["input_values"]}
            total = None
        else:  # raw-waveform encoders (wav2vec2, HuBERT, WavLM…): padded to the longest clip, with a mask
            encoded = self.feature_extractor(waves, padding=True, return_attention_mask=True, **kwargs)
            return {"input_values": encoded["input_values"], "attention_mask": encoded["attention_mask"]}
        fraction = [1.0 if total is None else min(1.0, n / total) for n in lengths]
        batch["valid_fraction"] = torch.tensor(fraction, dtype=torch.float32)
        return batch

    def count_truncated(self, items: Sequence) -> int:
        return sum(len(load_audio(item, self.sample_rate)) > self.max_samples for item in items)

    def _model_inputs(self, batch) -> dict:
        inputs = {k: v for k, v in batch.items() if k in ("input_values", "input_features")}
        if "attention_mask" in batch and getattr(self.feature_extractor, "return_attention_mask", False):
            inputs["attention_mask"] = batch["attention_mask"]
        return inputs

    def _frame_mask(self, batch, n_frames: int, device) -> torch.Tensor:
        if "attention_mask" in batch and hasattr(self.model, "_get_feature_vector_attention_mask"):
            return self.model._get_feature_vector_attention_mask(n_frames, batch["attention_mask"]).to(device)
        fraction = batch.get("valid_fraction")
        if fraction is None:
            first = next(iter(batch.values()))
            return torch.ones(first.shape[0], n_frames, dtype=torch.bool, device=device)
        valid = torch.ceil(fraction.to(device) * n_frames).clamp(min=1)
        return torch.arange(n_frames, device=device)[None, :] < valid[:, None]

    def _pool(self, output, batch) -> torch.Tensor:
        hidden = output[0] if isinstance(output, (tuple, list)) else output
        if hasattr(hidden, "last_hidden_state"):
            hidden = hidden.last_hidden_state
        mask = self._frame_mask(batch, hidden.shape[1], hidden.device).unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def _pooled_outputs(self, batch, layers: list[str]) -> dict[str, torch.Tensor]:
        # hidden_states[0] is the input of the first transformer layer (the feature encoder's output),
        # hidden_states[i + 1] layer i's output; the last group is the final (normed) hidden state.
        names = self.layer_names
        need_hidden = any(layer != names[-1] for layer in layers)
        output = self.model(**self._model_inputs(batch), output_hidden_states=need_hidden)
        pooled = {}
        for layer in layers:
            index = names.index(layer)
            if index == len(names) - 1:
                pooled[layer] = self._pool(output.last_hidden_state, batch)
            else:
                pooled[layer] = self._pool(output.hidden_states[index], batch)
        return pooled

    def _forward_final(self, batch):
        return self._pool(self.model(**self._model_inputs(batch)).last_hidden_state, batch)


def _contains(module: nn.Module, target: nn.Module) -> bool:
    return any(m is target for m in module.modules())


def _modules_outside(root: nn.Module, excluded: list[nn.Module]) -> list[nn.Module]:
    """The widest submodules of ``root`` that neither are nor contain any of ``excluded``."""
    found = []
    for child in root.children():
        if any(child is x for x in excluded):
            continue
        if any(_contains(child, x) for x in excluded):
            found += _modules_outside(child, excluded)
        else:
            found.append(child)
    return found
