"""``resemblyzer_ge2e``: Resemblyzer's ``VoiceEncoder``, a GE2E speaker encoder, as a backbone.

Wan et al. 2018, "Generalized End-to-End Loss for Speaker Verification": a 3-layer LSTM over mel
frames, trained so that clips of one speaker embed close together. The weights ship inside the
``resemblyzer`` wheel and are never fetched.

Input: audio items (file paths, or 1-D float arrays at 16 kHz; see :mod:`headstart.data.audio`).
``preprocess`` runs resemblyzer's own ``preprocess_wav`` (volume normalised to -30 dBFS, long
silences cut by WebRTC VAD), then keeps one window of 1.6 s = 160 frames: the centre at evaluation,
a random one when ``train=True``; shorter clips are zero-padded, and :meth:`count_truncated` says
how many are longer. One window is exactly one of resemblyzer's partial utterances (resemblyzer
averages several overlapping partials over a long recording; headstart uses one per clip so a batch
is one tensor), turned into resemblyzer's 40-channel mel spectrogram (``wav_to_mel_spectrogram``:
mel power, 25 ms windows every 10 ms).

Layer groups, input to output: ``lstm.0``, ``lstm.1``, ``lstm.2``, ``projection``. The stacked LSTM
is run as three single-layer LSTMs holding the same weights (identical outputs), so that each layer
is a group that can be frozen and read.

Shapes for a batch of ``n`` clips::

    mels (n, 160, 40) -> lstm.0 -> (n, 160, 256) -> lstm.1 -> (n, 160, 256) -> lstm.2 -> (n, 160, 256)
    last hidden state (n, 256) -> projection: relu(linear), L2-normalised -> features (n, 256)

An LSTM group's features are its frames mean-pooled, ``(n, 256)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..data.audio import fit_length, load_audio
from .base import Backbone, LayerGroup
from .info import ModelInfo
from .wave_memo import WaveMemo


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
