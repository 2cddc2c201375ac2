"""Audio baseline: log-mel statistics (MFCC-like) and a logistic regression (C chosen on validation).

Every clip is resampled to 16 kHz; a 40-band log-mel spectrogram (25 ms windows every 10 ms) is
summarised by the mean and standard deviation over time of each band, of its first difference
(delta), and of the first 13 DCT-II coefficients (MFCCs): ``(n, 2 * (40 + 40 + 13)) = (n, 186)``,
standardised with the training statistics. No learned features, so a no-transfer baseline. Only
numpy and scipy; the state is the standardisation (two arrays).
"""

from __future__ import annotations

import numpy as np

from ..data.audio import load_audio
from .base import Baseline

RATE, N_FFT, HOP, N_MELS, N_MFCC = 16_000, 400, 160, 40, 13


def _mel_filters() -> np.ndarray:
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    mels = np.linspace(hz_to_mel(0.0), hz_to_mel(RATE / 2), N_MELS + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(N_FFT, 1.0 / RATE)
    filters = np.zeros((N_MELS, len(bins)), np.float32)
    for m in range(N_MELS):
        lo, mid, hi = hz[m], hz[m + 1], hz[m + 2]
        filters[m] = np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    return filters


_FILTERS = _mel_filters()


def log_mel_statistics(wave: np.ndarray) -> np.ndarray:
    """The 186 statistics of one 16 kHz waveform (see the module docstring)."""
    from scipy.fft import dct

    if len(wave) < N_FFT:
        wave = np.pad(wave, (0, N_FFT - len(wave)))
    frames = np.lib.stride_tricks.sliding_window_view(wave, N_FFT)[::HOP] * np.hanning(N_FFT).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    log_mel = np.log(power @ _FILTERS.T + 1e-6)
    delta = np.diff(log_mel, axis=0) if len(log_mel) > 1 else np.zeros_like(log_mel)
    mfcc = dct(log_mel, type=2, norm="ortho", axis=1)[:, :N_MFCC]
    parts = [log_mel, delta, mfcc]
    return np.concatenate([p.mean(axis=0) for p in parts] + [p.std(axis=0) for p in parts]).astype(np.float32)


class LogMelLogistic(Baseline):
    name = "logmel_logistic"
    modality = "audio"

    def __init__(self):
        self.mean = np.zeros(0, np.float32)
        self.scale = np.ones(0, np.float32)

    def _raw(self, items) -> np.ndarray:
        return np.stack([log_mel_statistics(load_audio(item, RATE)) for item in items])

    def fit_transform(self, items) -> np.ndarray:
        raw = self._raw(items)
        self.mean = raw.mean(axis=0).astype(np.float32)
        self.scale = np.maximum(raw.std(axis=0), 1e-6).astype(np.float32)
        return (raw - self.mean) / self.scale

    def transform(self, items) -> np.ndarray:
        return (self._raw(items) - self.mean) / self.scale

    def state(self):
        return {}, {"mean": self.mean, "scale": self.scale}

    def set_state(self, settings, arrays):
        self.mean, self.scale = arrays["mean"], arrays["scale"]
