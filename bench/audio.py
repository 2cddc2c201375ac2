"""Spoken words: transfer against the no-transfer baseline, and clean → noisy adaptation.

``python -m bench.audio`` builds the espeak-ng data set of :mod:`bench.audio_data` once (18 words ×
14 voices × 3 speeds × 3 pitches, plus a pink-noise copy at ``--snr`` dB) under the bench cache
folder, then runs two kinds of task, each over ``--seeds`` (the labeled draw and the training seed
change together). The split is speaker-independent: the test voices are never heard in training.

* ``words@5`` / ``words@20``: 5 / 20 clean clips per word from the training voices; test = every
  clean clip of the test voices. Methods: the no-transfer baseline (log-mel statistics + logistic
  regression), ``linear_probe``, ``finetune``, ``lp_ft``, ``scratch`` on ``resemblyzer_ge2e``, and
  ``auto`` (the planner).
* ``clean→noisy``: 20 labeled clean clips per word (training voices) as the source, the noisy copies
  of every training-voice clip as unlabeled target inputs, and the noisy clips of the test voices as
  the test set. Methods: ``source_only`` (fine-tune, no target inputs), each adapter alone at its
  default weight, ``auto`` (the one ``adapt="auto"`` picks without target labels; its time is that of
  all the candidates it fits), and ``target_labeled``: the same fine-tune on the noisy copies of the
  labeled clips, an upper bound no user without noisy labels has.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from headstart import TransferClassifier, __version__

from . import audio_data, datasets
from .report import parse_suite_args, record, write_section
from .strategies import FIXED, run_method

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = ("coral", "mmd", "dann", "mcc", "self_training")
SHIFT_METHODS = ("source_only", *ADAPTERS, "auto", "target_labeled")


def spoken_words(snr: float, smoke: bool) -> dict:
    """Build (once) and read the espeak-ng set: train/test paths and labels, clean and noisy."""
    words = ("yes", "no", "up", "down") if smoke else audio_data.WORDS
    voices = ("en+m1", "en+m3", "en+f1", "en+f2") if smoke else audio_data.VOICES
    tag = f"espeak-{len(words)}w{len(voices)}v-snr{snr:g}"
    root = datasets.data_dir() / tag
    if not (root / "split.csv").is_file():
        print(f"[bench.audio] speaking {len(words)} words in {len(voices)} voices with espeak-ng into {root}", flush=True)
        audio_data.build(root, words=words, voices=voices, noisy_snr=snr, noise="pink")
    rows = list(csv.DictReader(open(root / "split.csv", encoding="utf-8")))
    out = {}
    for split in ("train", "test"):
        chosen = [r for r in rows if r["split"] == split]
        out[split] = {"clean": [str(root / r["path"]) for r in chosen],
                      "noisy": [str(root / r["path"].replace("clean/", "noisy/", 1)) for r in chosen],
                      "y": np.array([r["label"] for r in chosen])}
    return out


def run_shift(data: dict, labeled: np.ndarray, seed: int, args) -> dict[str, dict]:
    """Every adaptation candidate once, chosen by the library's own ``adapt="auto"`` selection.

    :func:`headstart.adapt.select.select_adaptation` is what ``adapt="auto"`` runs; calling it here
    with a ``fit_candidate`` that also scores each candidate on the noisy test voices gives every
    method's row and the automatic choice from the same fits, instead of training each twice.
    """
    from headstart.adapt.select import select_adaptation

    train, test = data["train"], data["test"]
    clean, y = [train["clean"][i] for i in labeled], train["y"][labeled]
    options = dict(backbone="resemblyzer_ge2e", strategy="finetune", random_state=seed, verbose=0,
                   epochs=args.epochs, cache_dir=args.cache_dir)
    rows: dict[str, dict] = {}

    def fit_candidate(method, weight):
        started = time.perf_counter()
        clf = TransferClassifier(**options, adapt=method, adapt_weight=weight if method else None)
        clf.fit(clean, y, X_target=train["noisy"] if method else None)
        rows["source_only" if method is None else method] = {
            "accuracy": float((clf.predict(test["noisy"]) == test["y"]).mean()), "seconds": time.perf_counter() - started}
        return clf

    # Each method at its default weight only (adapt="auto" with adapt_weight=1): a grid of weights would
    # triple the fine-tunes. DEV guards the choice as in the library.
    _, record = select_adaptation(fit_candidate, train["noisy"],
                                  candidates=("source_only", *ADAPTERS) if not args.smoke else ("source_only", "coral"),
                                  weights=(1.0,), source_validation=TransferClassifier(**options)._source_validation(clean, y))
    chosen = rows[record["chosen_method"]]
    rows["auto"] = {"accuracy": chosen["accuracy"], "seconds": sum(r["seconds"] for r in rows.values()),
                    "chosen": record["chosen_method"]}
    if not args.smoke:
        started = time.perf_counter()
        upper = TransferClassifier(**options).fit([train["noisy"][i] for i in labeled], y)
        rows["target_labeled"] = {"accuracy": float((upper.predict(test["noisy"]) == test["y"]).mean()),
                                  "seconds": time.perf_counter() - started}
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audio", description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", default="5,20", help="labeled clips per word for the transfer-vs-baseline rows")
    parser.add_argument("--shift-per-class", type=int, default=20, help="labeled clean clips per word for clean→noisy")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--snr", type=float, default=0.0, help="signal-to-noise ratio (dB) of the noisy copy")
    parser.add_argument("--budget", default="10m", help="the planner's time budget")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: words, shift")
    parser.add_argument("--cache-dir", default=None)
    args = parse_suite_args(parser, argv, smoke={"seeds": 1, "epochs": 1, "budget": "1m", "per_class": "3",
                                                 "shift_per_class": 3},
                            smoke_help="4 words, 4 voices, 1 seed, 1 epoch: checks the harness", threads=False)
    args.image_size = 224  # unused for audio; run_method passes it through
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    data = spoken_words(args.snr, args.smoke)
    train, test = data["train"], data["test"]
    results: dict = {}
    for seed in range(args.seeds):
        for per_class in ([] if "words" in skip else [int(k) for k in args.per_class.split(",")]):
            labeled = datasets.few_shot(train["y"], per_class, seed)
            X = [train["clean"][i] for i in labeled]
            for method in (*FIXED, "auto"):
                outcome = run_method(method, X, train["y"][labeled], test["clean"], test["y"], seed, args, modality="audio")
                record(results, f"words@{per_class}", method, outcome, seed)
        if "shift" not in skip:
            labeled = datasets.few_shot(train["y"], args.shift_per_class, seed)
            for method, outcome in run_shift(data, labeled, seed, args).items():
                record(results, "clean→noisy", method, outcome, seed)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "torch": torch.__version__, "headstart": __version__, "seeds": args.seeds, "epochs": args.epochs,
            "snr": args.snr, "budget": args.budget, "shift_per_class": args.shift_per_class, "smoke": args.smoke,
            "n_train_clips": len(train["y"]), "n_test_clips": len(test["y"]), "words": len(set(train["y"]))}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / ("audio-smoke.json" if args.smoke else "audio.json")).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    body = render(results, meta)
    print(body)
    if not args.smoke:
        write_section(ROOT / "docs" / "benchmarks.md", "audio", "Spoken words (espeak-ng): transfer, baseline, adaptation", body)
    return 0


def _cell(rows: list) -> str:
    accuracies = [r["accuracy"] for r in rows]
    spread = statistics.pstdev(accuracies) if len(accuracies) > 1 else 0.0
    return f"{statistics.fmean(accuracies):.3f} ± {spread:.3f} ({statistics.fmean(r['seconds'] for r in rows):.0f} s)"


def render(results: dict, meta: dict) -> str:
    lines = [f"Measured {meta['date']} on {meta['machine']} (CPU), torch {meta['torch']}, headstart {meta['headstart']}; "
             f"{meta['seeds']} seeds, up to {meta['epochs']} epochs, backbone `resemblyzer_ge2e`. {meta['words']} words; "
             f"{meta['n_train_clips']} clips from the training voices, {meta['n_test_clips']} from held-out test voices. "
             f"Test accuracy mean ± std over seeds (mean fit seconds). `python -m bench.audio`.", ""]
    word_tasks = [t for t in results if t.startswith("words@")]
    if word_tasks:
        methods = [m for m in (*FIXED, "auto") if m in results[word_tasks[0]]]
        lines += ["| task | " + " | ".join(methods) + " | planner chose |", "|---" * (len(methods) + 2) + "|"]
        for task in word_tasks:
            chosen = ", ".join(sorted({r["chosen"] for r in results[task].get("auto", [])}))
            lines.append(f"| {task} | " + " | ".join(_cell(results[task][m]) for m in methods) + f" | {chosen} |")
        lines.append("")
    if "clean→noisy" in results:
        by_method = results["clean→noisy"]
        lines += [f"Clean → noisy (pink noise at {meta['snr']:g} dB SNR; {meta['shift_per_class']} labeled clean clips "
                  "per word; every noisy training-voice clip unlabeled; tested on the noisy test voices):", "",
                  "| method | noisy test accuracy | chosen by adapt=auto |", "|---|---|---|"]
        for method in SHIFT_METHODS:
            if method in by_method:
                chosen = ", ".join(sorted({r["chosen"] for r in by_method[method] if "chosen" in r}))
                lines.append(f"| {method} | {_cell(by_method[method])} | {chosen} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
