"""Audio backbones: the offline zoo's ``resemblyzer_ge2e`` and Hugging Face audio encoders (``hf:``).

Both take audio items (file paths, or 1-D float arrays at 16 kHz; see :mod:`headstart.data.audio`),
resample them to the model's rate, and fit every clip to one fixed length inside ``preprocess``
(the centre window at evaluation, a random window when ``train=True``; shorter clips are
zero-padded). :meth:`count_truncated` says how many clips are longer than that window.

``resemblyzer_ge2e`` (Resemblyzer's ``VoiceEncoder``, a GE2E speaker encoder): resemblyzer's own
``preprocess_wav`` (volume normalisation to -30 dBFS, long silences cut by WebRTC VAD), then one
fixed-length window of 1.6 s = 160 frames (exactly one of resemblyzer's partial utterances;
resemblyzer averages several overlapping partials over long recordings, headstart uses one window
per clip so a batch is one tensor) turned into resemblyzer's 40-channel mel spectrogram
(``wav_to_mel_spectrogram``: mel power, 25 ms windows every 10 ms). The 3-layer LSTM is run as
three single-layer LSTMs holding the same weights (identical outputs) so each layer is a layer
group: ``lstm.0``, ``lstm.1``, ``lstm.2``, ``projection``. Features: resemblyzer's embedding,
``relu(linear(last hidden state))`` L2-normalised, 256-d. Intermediate LSTM groups are mean-pooled
over frames.

``hf:`` audio encoders (wav2vec2, HuBERT, WavLM, data2vec-audio, Whisper's encoder, AST): the model's
``AutoFeatureExtractor`` and ``AutoModel`` (Whisper: the encoder only). Layer groups: the feature
encoder / embeddings (everything before the first transformer layer), then ``layer.0`` …
``layer.N``; features are the frames of the group's output, mean-pooled under the frame mask
(padding frames excluded). The final layer norm belongs to the last group.
"""

from __future__ import annotations

import os

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..data.audio import fit_length, load_audio
from ..errors import ConfigError
from .base import Backbone, LayerGroup
from .hf_text import _find_attr
from .info import ModelInfo

# --------------------------------------------------------------------------- resemblyzer


class _StackedLSTM(nn.Module):
    """Resemblyzer's ``nn.LSTM(40, 256, 3)`` as three one-layer LSTMs (so each is hookable and freezable)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.LSTM(input_size if i == 0 else hidden_size, hidden_size, 1, batch_first=True) for i in range(num_layers)
        )

    def forward(self, x):
        hidden = None
        for layer in self.layers:
            x, (hidden, _) = layer(x)
        return x, hidden[-1]

    def load_stacked(self, state: dict, prefix: str = "lstm.") -> None:
        """Load the weights of resemblyzer's stacked LSTM (``weight_ih_l{i}`` → layer ``i``'s ``weight_ih_l0``)."""
        for i, layer in enumerate(self.layers):
            layer.load_state_dict(
                {f"{kind}_l0": state[f"{prefix}{kind}_l{i}"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
                strict=True,
            )


class _Projection(nn.Module):
    def __init__(self, hidden_size: int, embedding_size: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, embedding_size)

    def forward(self, hidden):
        raw = torch.relu(self.linear(hidden))
        return raw / torch.norm(raw, dim=1, keepdim=True).clamp(min=1e-8)


def resemblyzer_weights() -> dict:
    """The state dict resemblyzer ships inside its wheel (``resemblyzer/pretrained.pt``); never fetched."""
    from pathlib import Path

    import resemblyzer

    path = Path(resemblyzer.__file__).resolve().parent / "pretrained.pt"
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors: no unpickling needed
    return checkpoint["model_state"]


class WaveMemo:
    """Decoded clips of audio *files*, kept across epochs up to ``max_bytes``.

    Reading, resampling and trimming a clip costs about three times the GE2E encoder's forward
    pass (64 one-second clips: 2.4 s against 0.7 s), and a fine-tune reads every training clip once
    per epoch. The key is the path with its size and modification time, so an edited file is read
    again; in-memory arrays are not kept (they are cheap to reuse, and have no stable key).
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


class ResemblyzerBackbone(Backbone):
    """Resemblyzer's GE2E speaker encoder as a headstart backbone (see the module docstring)."""

    def __init__(self, info: ModelInfo, *, pretrained: bool, window_seconds: float | None = None):
        super().__init__(info, pretrained=pretrained)
        from resemblyzer import hparams

        self.hparams = hparams
        self.sample_rate = int(hparams.sampling_rate)
        self.n_frames = int(round((window_seconds or 1.6) * 1000 / hparams.mel_window_step))
        self.hop = int(hparams.sampling_rate * hparams.mel_window_step / 1000)
        self.window_samples = self.n_frames * self.hop
        self.lstm = _StackedLSTM(hparams.mel_n_channels, hparams.model_hidden_size, hparams.model_num_layers)
        self.projection = _Projection(hparams.model_hidden_size, hparams.model_embedding_size)
        if pretrained:
            state = resemblyzer_weights()
            self.lstm.load_stacked(state)
            self.projection.linear.load_state_dict({"weight": state["linear.weight"], "bias": state["linear.bias"]})
        self._groups = [LayerGroup(f"lstm.{i}", [layer], layer) for i, layer in enumerate(self.lstm.layers)]
        self._groups.append(LayerGroup("projection", [self.projection], self.projection))
        self._rng = np.random.default_rng(0)
        self._waves = WaveMemo()

    def _layer_groups(self) -> list[LayerGroup]:
        return self._groups

    def preprocess_signature(self) -> dict:
        return {"sample_rate": self.sample_rate, "window_frames": self.n_frames, "mel_channels": 40,
                "preprocess": "resemblyzer.preprocess_wav", "crop": "centre"}

    def _wave(self, item) -> np.ndarray:
        return self._waves.get(item, self._decode)

    def _decode(self, item) -> np.ndarray:
        from resemblyzer import preprocess_wav

        wave = load_audio(item, self.sample_rate)
        if np.any(wave):  # an all-zero clip has no volume to normalise (resemblyzer would divide by 0)
            trimmed = preprocess_wav(wave)
            wave = trimmed if len(trimmed) else wave
        return wave.astype(np.float32)

    def preprocess(self, items: Sequence, *, train: bool = False) -> dict[str, torch.Tensor]:
        from resemblyzer import wav_to_mel_spectrogram

        mels = []
        for item in items:
            wave, _ = fit_length(self._wave(item), self.window_samples, rng=self._rng if train else None)
            mels.append(wav_to_mel_spectrogram(wave)[: self.n_frames])
        return {"mels": torch.from_numpy(np.stack(mels).astype(np.float32))}

    def count_truncated(self, items: Sequence) -> int:
        return sum(len(self._wave(item)) > self.window_samples for item in items)

    def _pool(self, output, batch) -> torch.Tensor:
        if isinstance(output, (tuple, list)):  # an LSTM layer: (frames, (h, c)); mean over frames
            return output[0].mean(dim=1)
        return output

    def _forward_final(self, batch):
        _, hidden = self.lstm(batch["mels"])
        return self.projection(hidden)


# --------------------------------------------------------------------------- Hugging Face audio encoders

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

    def _layer_groups(self) -> list[LayerGroup]:
        return self._groups

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
