"""A spoken-word test set made by a real speech synthesiser: espeak-ng.

espeak-ng speaks the ten digits and eight command words ("yes", "no", "up", "down", "left",
"right", "stop", "go") in many voices (``-v en+m1`` … ``en+m7``, ``en+f1`` … ``en+f4``, plus a few
English accents), speeds (``-s`` words per minute) and pitches (``-p`` 0..99). Files are written as
``OUT/clean/<word>/<voice>_<speed>_<pitch>.wav`` (16-bit mono, espeak-ng's 22.05 kHz) and, with
``--noisy-snr``, the same clips with white or pink noise added at that SNR (numpy, seeded) as
``OUT/noisy/<word>/...``. ``OUT/split.csv`` lists every clean clip with a speaker-independent
split: whole voices are held out for test (``path,label,voice,split``).

    python -m bench.audio_data OUT_DIR [--noisy-snr 5] [--words yes,no] [--voices en+m1,en+f1]

espeak-ng is a Debian package (``apt-get install espeak-ng``); this script installs it with apt-get
when it is missing and it runs as root, and otherwise says how to get it.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COMMANDS = ("yes", "no", "up", "down", "left", "right", "stop", "go")
WORDS = DIGITS + COMMANDS
VOICES = tuple(f"en+m{i}" for i in range(1, 8)) + tuple(f"en+f{i}" for i in range(1, 5)) + (
    "en-us+m3", "en-gb-scotland+f2", "en-us+f3",
)
SPEEDS = (130, 175, 220)
PITCHES = (30, 50, 70)


def espeak_binary(install: bool = True) -> str | None:
    """The espeak-ng executable; installed with apt-get when missing and running as root."""
    found = shutil.which("espeak-ng")
    if found or not install:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("espeak-ng not found: installing it with apt-get (Debian package espeak-ng)", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "-q", "espeak-ng"], env=env).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env)
            subprocess.run(["apt-get", "install", "-y", "-q", "espeak-ng"], env=env)
    return shutil.which("espeak-ng")


def speak(binary: str, word: str, voice: str, speed: int, pitch: int, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([binary, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), word],
                   check=True, capture_output=True)


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    pink = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return pink / (pink.std() + 1e-12)


def add_noise(wave: np.ndarray, snr_db: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    """``wave`` (float) plus white or pink noise scaled to ``snr_db`` relative to the clip's power."""
    noise = rng.standard_normal(len(wave)) if kind == "white" else _pink(len(wave), rng)
    signal_power = float(np.mean(wave.astype(np.float64) ** 2)) or 1e-12
    noise = noise * np.sqrt(signal_power / (10 ** (snr_db / 10)) / (np.mean(noise**2) + 1e-12))
    return np.clip(wave + noise, -1.0, 1.0)


def speaker_split(voices, test_fraction: float = 0.3, seed: int = 0) -> dict[str, str]:
    """Whole voices go to test (at least one), the rest to train: no speaker is in both."""
    voices = sorted(voices)
    order = np.random.default_rng(seed).permutation(len(voices))
    n_test = max(1, int(round(len(voices) * test_fraction))) if len(voices) > 1 else 0
    test = {voices[i] for i in order[:n_test]}
    return {v: ("test" if v in test else "train") for v in voices}


def build(out_dir, *, words=WORDS, voices=VOICES, speeds=SPEEDS, pitches=PITCHES, noisy_snr: float | None = None,
          noise: str = "pink", test_fraction: float = 0.3, seed: int = 0, binary: str | None = None) -> dict:
    """Write the clean (and noisy) sets and ``split.csv``; return counts and paths."""
    import soundfile as sf

    binary = binary or espeak_binary()
    if binary is None:
        raise SystemExit("espeak-ng is not installed: sudo apt-get install espeak-ng (Debian/Ubuntu), "
                         "brew install espeak-ng (macOS)")
    out = Path(out_dir)
    split = speaker_split(voices, test_fraction, seed)
    rng = np.random.default_rng(seed)
    rows = []
    for word, voice, speed, pitch in itertools.product(words, voices, speeds, pitches):
        name = f"{voice.replace('+', '-')}_{speed}_{pitch}.wav"
        clean = out / "clean" / word / name
        speak(binary, word, voice, speed, pitch, clean)
        rows.append({"path": str(clean.relative_to(out)), "label": word, "voice": voice, "split": split[voice]})
        if noisy_snr is not None:
            wave, rate = sf.read(str(clean), dtype="float32")
            noisy = out / "noisy" / word / name
            noisy.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(noisy), add_noise(wave, noisy_snr, noise, rng), rate, subtype="PCM_16")
    with open(out / "split.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "voice", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return {"clips": len(rows), "clean": str(out / "clean"), "noisy": str(out / "noisy") if noisy_snr is not None else None,
            "split": str(out / "split.csv"), "test_voices": sorted(v for v, s in split.items() if s == "test")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audio_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--noisy-snr", type=float, default=None, help="also write a noisy copy at this SNR (dB)")
    parser.add_argument("--noise", choices=("white", "pink"), default="pink")
    parser.add_argument("--words", default=",".join(WORDS), help="comma-separated words")
    parser.add_argument("--voices", default=",".join(VOICES), help="comma-separated espeak-ng -v voices")
    parser.add_argument("--speeds", default=",".join(map(str, SPEEDS)))
    parser.add_argument("--pitches", default=",".join(map(str, PITCHES)))
    parser.add_argument("--test-fraction", type=float, default=0.3, help="share of voices held out for test")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = build(args.out_dir, words=args.words.split(","), voices=args.voices.split(","),
                   speeds=[int(s) for s in args.speeds.split(",")], pitches=[int(p) for p in args.pitches.split(",")],
                   noisy_snr=args.noisy_snr, noise=args.noise, test_fraction=args.test_fraction, seed=args.seed)
    print(f"wrote {result['clips']} clips to {result['clean']}" + (f" and {result['noisy']}" if result["noisy"] else "")
          + f"; speaker-independent split in {result['split']} (test voices: {', '.join(result['test_voices'])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
