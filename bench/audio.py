"""Spoken words: transfer against the no-transfer baseline, Whisper's encodings, and clean → noisy adaptation.

``python -m bench.audio`` builds the espeak-ng data set of :mod:`bench.audio_data` once (18 words ×
14 voices × 3 speeds × 3 pitches, plus a pink-noise copy at ``--snr`` dB) under the bench cache
folder, then runs three parts (``--skip`` leaves any out), each over ``--seeds`` (the labeled draw
and the training seed change together). The split is speaker-independent: the test voices are never
heard in training.

* ``encoding`` (Whisper backbones only; issue 25, item 2): the clip-length encoding (the clip's own
  frames, the default) against Whisper's padded 30-s encoding (3,000 mel frames). On a fixed pool of
  ``--encoding-pool`` clips per word from the training voices and ``--encoding-test`` per word from
  the test voices: the cosine between a clip's two pooled features (every layer group), and the
  test accuracy of the linear probe's head (:func:`headstart.heads.fit_head` on the last layer's
  features, as ``linear_probe`` fits it) drawn at 5 and 20 clips per word from the pool, per seed,
  on each encoding (paired: same clips, same draws). Then the feature-extraction speed of every
  backbone (and of the log-mel baseline's statistics): seconds per clip for ``--timing-clips`` test
  clips nearest one second long (log-mels + encoder, waves already decoded), the extractors timed in
  turn within each of ``--timing-rounds`` rounds (clip-length, padded, clip-length, padded … in the
  same process), median over the rounds; the speed-up is the median of the rounds' ratios.
* ``words@5`` / ``words@20``: 5 / 20 clean clips per word from the training voices; test = every
  clean clip of the test voices. Methods: the no-transfer baseline (log-mel statistics + logistic
  regression), each of ``--strategies`` on each of ``--backbones``, and ``auto`` (the planner:
  ``strategy="auto"``, ``backbone="auto"``, which ranks every installed audio backbone by LogME).
  Run method by method (every seed of one before the next), so a run cut short keeps whole rows.
* ``clean→noisy``: 20 labeled clean clips per word (training voices) as the source, the noisy copies
  of every training-voice clip as unlabeled target inputs, and the noisy clips of the test voices as
  the test set, on ``--shift-backbone``. Methods: the log-mel ``baseline`` trained on the clean
  clips, ``source_only`` (fine-tune, no target inputs), each adapter alone at its default weight,
  ``auto`` (the one ``adapt="auto"`` picks without target labels; its time is that of all the
  candidates it fits), and ``target_labeled``: the same fine-tune on the noisy copies of the
  labeled clips, an upper bound no user without noisy labels has.

Results go to ``bench/results/audio.json`` after every row (``--merge`` adds to the saved ones,
replacing the rows rerun), and the rendered tables to docs/benchmarks.md (full sizes only).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from headstart import TransferClassifier, __version__

from . import audio_data, datasets
from .report import parse_suite_args, write_section

ROOT = Path(__file__).resolve().parent.parent
BACKBONES = ("whisper_base", "whisper_tiny_en", "resemblyzer_ge2e")
STRATEGIES = ("linear_probe", "finetune", "lp_ft", "contrastive")
FIXED = ("baseline", *STRATEGIES)  # the method names a words task runs (per backbone for the strategies)
ADAPTERS = ("coral", "mmd", "dann", "mcc", "self_training")
SHIFT_METHODS = ("baseline", "source_only", *ADAPTERS, "auto", "target_labeled")


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


def _accuracy(predictions, y) -> float:
    return float((np.asarray(predictions) == np.asarray(y)).mean())


def _baseline(X, y, seed: int):
    """headstart's audio no-transfer baseline (log-mel statistics + logistic regression), fit as the planner fits it."""
    from headstart.baselines import baseline_for
    from headstart.data import stratified_split

    model = baseline_for("audio")()
    classes, encoded = np.unique(y, return_inverse=True)
    tr, va = stratified_split(encoded, 0.2, seed)
    items = list(X)
    model.fit([items[i] for i in tr], encoded[tr], [items[i] for i in va], encoded[va], len(classes))
    return lambda inputs: classes[model.predict_logits(list(inputs)).argmax(1)]


def run_method(method: str, backbone: str | None, X, y, Xt, yt, seed: int, args) -> dict:
    """One fit and its test accuracy; ``seconds`` is the fit alone (predicting the test clips is ``predict_seconds``)."""
    started = time.perf_counter()
    extra = {}
    if method == "baseline":
        predict = _baseline(X, y, seed)
    else:
        options = dict(random_state=seed, verbose=0, epochs=args.epochs, cache_dir=args.cache_dir)
        if method == "auto":
            options.update(strategy="auto", backbone="auto", budget=args.budget)
        else:
            options.update(strategy=method, backbone=backbone)
        clf = TransferClassifier(**options).fit(X, y)
        predict = clf.predict
        if method == "auto":  # the held-out evidence too, so other selection rules can be replayed on it
            keep = ("name", "kind", "status", "default", "mean", "seconds")
            plan = clf.plan_
            extra = {"chosen": plan["winner"], "negative_transfer": plan["negative_transfer"],
                     "kept_backbones": plan.get("kept_backbones"), "rule": plan.get("rule"),
                     "spent_seconds": plan.get("spent_seconds"),
                     "candidates": [{k: c.get(k) for k in keep} for c in plan["candidates"]]}
    fitted = time.perf_counter()
    predictions = predict(Xt)
    return {"seed": seed, **({"backbone": backbone} if backbone else {}), "accuracy": _accuracy(predictions, yt),
            "seconds": fitted - started, "predict_seconds": time.perf_counter() - fitted, **extra}


def record(results: dict, task: str, method: str, outcome: dict, quiet: bool = False) -> None:
    """Put one run's outcome in ``results[task][method]`` (replacing the row of the same seed and backbone) and print it."""
    same = lambda r: (r.get("seed"), r.get("backbone")) == (outcome.get("seed"), outcome.get("backbone"))
    rows = [r for r in results.setdefault(task, {}).setdefault(method, []) if not same(r)]
    results[task][method] = sorted([*rows, outcome], key=lambda r: (str(r.get("backbone")), r.get("seed", 0)))
    if quiet:
        return
    name = method + (f"@{outcome['backbone']}" if outcome.get("backbone") else "")
    print(f"{task} seed {outcome.get('seed')} {name:30s} {outcome['accuracy']:.3f} {outcome['seconds']:7.1f} s"
          + (f"  chose {outcome['chosen']}" if "chosen" in outcome else ""), flush=True)


def rows_of(results: dict, task: str, method: str, backbone: str | None = None) -> list[dict]:
    return [r for r in results.get(task, {}).get(method, []) if r.get("backbone") == backbone]


# --------------------------------------------------------------------------- clip-length vs padded


def _whisper_pair(name: str):
    """The zoo's Whisper backbone twice: clip-length encoding (the default) and Whisper's padded 30 s."""
    from headstart.backbones import create_backbone

    clip = create_backbone(name)
    padded = create_backbone(name)
    padded.padded = True
    return clip.eval(), padded.eval()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def run_encoding(data: dict, args, backbones: list[str]) -> dict:
    """Per Whisper backbone: cosine per layer group between the two encodings, and the probe on each."""
    from headstart.cache import open_cache
    from headstart.heads import fit_head

    train, test = data["train"], data["test"]
    pool = datasets.few_shot(train["y"], args.encoding_pool, 1000)
    held = datasets.few_shot(test["y"], args.encoding_test, 1000)
    items = [train["clean"][i] for i in pool] + [test["clean"][i] for i in held]
    pool_y, test_y = train["y"][pool], test["y"][held]
    classes = np.unique(pool_y)
    pool_codes, test_codes = np.searchsorted(classes, pool_y), np.searchsorted(classes, test_y)
    cache = open_cache(args.cache_dir)
    out = {}
    for name in backbones:
        clip, padded = _whisper_pair(name)
        layers = clip.layer_names
        features, seconds = {}, {}
        for label, backbone in (("clip", clip), ("padded", padded)):
            started = time.perf_counter()
            features[label] = cache.features(backbone, items, layers=layers, batch_size=16)
            seconds[label] = time.perf_counter() - started
            print(f"[bench.audio] {name} {label}: features of {len(items)} clips in {seconds[label]:.0f} s "
                  f"({cache.last_computed} computed, the rest cached)", flush=True)
        cosine = {}
        for layer in layers:
            c = _cosines(features["clip"][layer], features["padded"][layer])
            cosine[layer] = {"median": float(np.median(c)), "min": float(c.min()), "mean": float(c.mean())}
        last = layers[-1]
        n_pool = len(pool)
        probes = {}
        for per_class in args.encoding_per_class:
            rows = []
            for seed in range(args.seeds):
                draw = datasets.few_shot(pool_y, per_class, seed)
                row = {"seed": seed}
                for label in ("clip", "padded"):
                    f = features[label][last]
                    head = fit_head(f[:n_pool][draw], pool_codes[draw], len(classes), random_state=seed)
                    logits = f[n_pool:] @ head.weight.T + head.bias
                    row[label] = _accuracy(logits.argmax(1), test_codes)
                rows.append(row)
                print(f"encoding {name} @{per_class} seed {seed}: probe clip-length {row['clip']:.3f}, "
                      f"padded {row['padded']:.3f}", flush=True)
            probes[str(per_class)] = rows
        out[name] = {"cosine": cosine, "last_layer": last, "probe": probes, "n_pool": n_pool, "n_test": len(held)}
    return out


def _durations(paths) -> np.ndarray:
    import soundfile as sf

    return np.array([sf.info(p).duration for p in paths])


def run_timing(data: dict, args, backbones: list[str]) -> dict:
    """Seconds per clip of feature extraction, every extractor in turn within each round."""
    from headstart.backbones import create_backbone
    from headstart.baselines.audio import log_mel_statistics
    from headstart.data.audio import load_audio

    paths = data["test"]["clean"]
    durations = _durations(paths)
    chosen = np.argsort(np.abs(durations - 1.0), kind="stable")[: args.timing_clips]
    clips = [paths[i] for i in chosen]
    extractors = {}
    for name in backbones:
        if name.startswith("whisper"):
            clip, padded = _whisper_pair(name)
            extractors[f"{name}:clip-length"], extractors[f"{name}:padded"] = clip, padded
        else:
            extractors[name] = create_backbone(name).eval()
    waves = [load_audio(p, 16_000) for p in clips]

    def run(extractor) -> float:
        started = time.perf_counter()
        if extractor is None:  # the log-mel baseline's statistics, from the decoded waves
            np.stack([log_mel_statistics(w) for w in waves])
        else:
            with torch.inference_mode():
                for positions in extractor.inference_batches(clips, len(clips)):
                    batch = extractor.preprocess([clips[i] for i in positions])
                    extractor.forward_features(batch)
        return (time.perf_counter() - started) / len(clips)

    extractors["logmel_statistics"] = None
    for extractor in extractors.values():  # decode and keep the waves (WaveMemo), warm the kernels
        run(extractor)
    times = {name: [] for name in extractors}
    for round_ in range(args.timing_rounds):
        for name, extractor in extractors.items():
            times[name].append(run(extractor))
        print(f"timing round {round_}: " + ", ".join(f"{n} {t[-1]:.3f} s/clip" for n, t in times.items()), flush=True)
    out = {"clips": len(clips), "mean_seconds": float(durations[chosen].mean()),
           "min_seconds": float(durations[chosen].min()), "max_seconds": float(durations[chosen].max()),
           "rounds": args.timing_rounds, "threads": torch.get_num_threads(),
           "seconds_per_clip": {n: {"median": float(np.median(t)), "all": t} for n, t in times.items()}}
    for name in backbones:
        if name.startswith("whisper"):
            ratios = [p / c for c, p in zip(times[f"{name}:clip-length"], times[f"{name}:padded"])]
            out.setdefault("speedup", {})[name] = {"median": float(np.median(ratios)), "min": float(min(ratios)),
                                                   "max": float(max(ratios))}
    return out


# --------------------------------------------------------------------------- clean → noisy


def run_shift(data: dict, labeled: np.ndarray, seed: int, args) -> dict[str, dict]:
    """Every adaptation candidate once, chosen by the library's own ``adapt="auto"``.

    :func:`headstart.adapt.select.select_adaptation` is what ``adapt="auto"`` runs; calling it here
    with a ``fit_candidate`` that also scores each candidate on the noisy test voices gives every
    method's row and the automatic choice from the same fits, instead of training each twice.
    """
    from headstart.adapt.select import select_adaptation

    train, test = data["train"], data["test"]
    clean, y = [train["clean"][i] for i in labeled], train["y"][labeled]
    rows: dict[str, dict] = {}
    options = dict(backbone=args.shift_backbone, strategy="finetune", random_state=seed, verbose=0,
                   epochs=args.epochs, cache_dir=args.cache_dir)

    def fit_candidate(method, weight):
        started = time.perf_counter()
        clf = TransferClassifier(**options, adapt=method, adapt_weight=weight if method else None)
        clf.fit(clean, y, X_target=train["noisy"] if method else None)
        rows["source_only" if method is None else method] = {
            "seed": seed, "accuracy": _accuracy(clf.predict(test["noisy"]), test["y"]),
            "seconds": time.perf_counter() - started}
        return clf

    # Each method at its default weight only (adapt="auto" with adapt_weight=1): a grid of weights would
    # triple the fine-tunes. DEV guards the choice as in the library.
    candidates = ("source_only", *args.shift_adapters)
    _, chosen = select_adaptation(fit_candidate, train["noisy"], candidates=candidates, weights=(1.0,),
                                  source_validation=TransferClassifier(**options)._source_validation(clean, y))
    picked = rows[chosen["chosen_method"]]
    rows["auto"] = {"seed": seed, "accuracy": picked["accuracy"], "chosen": chosen["chosen_method"],
                    "seconds": sum(r["seconds"] for r in rows.values()),
                    "candidates": list(candidates)}
    if args.target_labeled:
        started = time.perf_counter()
        upper = TransferClassifier(**options).fit([train["noisy"][i] for i in labeled], y)
        rows["target_labeled"] = {"seed": seed, "accuracy": _accuracy(upper.predict(test["noisy"]), test["y"]),
                                  "seconds": time.perf_counter() - started}
    return rows


# --------------------------------------------------------------------------- the run


def _names(text: str, allowed, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(allowed)})")
    return names


def _runs(methods: list[str], backbones: list[str]) -> list[tuple[str, str | None]]:
    """``(method, backbone)`` in the order they run: each strategy on every backbone."""
    return [(m, None) if m in ("baseline", "auto") else (m, b) for m in methods
            for b in ((None,) if m in ("baseline", "auto") else backbones)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audio", description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default=",".join(BACKBONES), help="comma-separated audio backbones")
    parser.add_argument("--methods", default=",".join((*FIXED, "auto")),
                        help="comma-separated words-task methods, run in this order: baseline, auto and the "
                             "strategies (each on every backbone)")
    parser.add_argument("--per-class", default="5,20", help="labeled clips per word for the words tasks")
    parser.add_argument("--shift-per-class", type=int, default=20, help="labeled clean clips per word for clean→noisy")
    parser.add_argument("--shift-backbone", default="whisper_tiny_en")
    parser.add_argument("--shift-adapters", default=",".join(ADAPTERS), help="the adapters adapt='auto' chooses among")
    parser.add_argument("--no-target-labeled", dest="target_labeled", action="store_false",
                        help="leave out the target_labeled upper bound of clean→noisy")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--snr", type=float, default=0.0, help="signal-to-noise ratio (dB) of the noisy copy")
    parser.add_argument("--budget", default="10m", help="the planner's time budget")
    parser.add_argument("--encoding-pool", type=int, default=30, help="clips per word (training voices) the probes draw from")
    parser.add_argument("--encoding-test", type=int, default=12, help="clips per word (test voices) the probes are tested on")
    parser.add_argument("--encoding-per-class", default="5,20")
    parser.add_argument("--timing-clips", type=int, default=16, help="clips timed per extractor and round")
    parser.add_argument("--timing-rounds", type=int, default=5)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: encoding, timing, words, shift")
    parser.add_argument("--merge", action="store_true", help="add to bench/results/audio.json, replacing the rows rerun")
    parser.add_argument("--no-docs", dest="docs", action="store_false", help="do not write docs/benchmarks.md")
    parser.add_argument("--cache-dir", default=None)
    args = parse_suite_args(parser, argv, smoke={"seeds": 1, "epochs": 1, "budget": "1m", "per_class": "3",
                                                 "shift_per_class": 3, "encoding_pool": 3, "encoding_test": 2,
                                                 "encoding_per_class": "2", "timing_clips": 2, "timing_rounds": 1,
                                                 "backbones": "whisper_tiny_en", "shift_adapters": "coral",
                                                 "target_labeled": False},
                            smoke_help="4 words, 4 voices, 1 seed, 1 epoch, whisper_tiny_en: checks the harness")
    backbones = _names(args.backbones, BACKBONES, "backbone")
    methods = _names(args.methods, (*FIXED, "auto"), "method")
    args.shift_adapters = _names(args.shift_adapters, ADAPTERS, "adapter")
    args.encoding_per_class = [int(k) for k in str(args.encoding_per_class).split(",")]
    skip = set(_names(args.skip, ("encoding", "timing", "words", "shift"), "part"))
    data = spoken_words(args.snr, args.smoke)
    train, test = data["train"], data["test"]
    out_path = ROOT / "bench" / "results" / ("audio-smoke.json" if args.smoke else "audio.json")
    # this run's own rows; every save merges them into what the file holds then (--merge), so runs of
    # different parts may go on side by side
    state = {"results": {}, "encoding": {}, "timing": {}, "shift_baseline": {}}
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "torch": torch.__version__, "headstart": __version__, "seeds": args.seeds, "epochs": args.epochs,
            "snr": args.snr, "budget": args.budget, "shift_per_class": args.shift_per_class,
            "shift_backbone": args.shift_backbone, "smoke": args.smoke, "n_train_clips": len(train["y"]),
            "n_test_clips": len(test["y"]), "words": len(set(train["y"]))}
    run = {"date": time.strftime("%Y-%m-%d %H:%M"), "argv": list(argv) if argv is not None else sys.argv[1:]}

    def save() -> dict:
        saved = json.loads(out_path.read_text()) if args.merge and out_path.is_file() else {}
        merged = {"meta": {**saved.get("meta", {}), **meta},
                  **{part: saved.get(part, {}) for part in state}}
        runs = merged["meta"].get("runs", [])
        merged["meta"]["runs"] = runs if run in runs else [*runs, run]
        merged["encoding"].update(state["encoding"])
        merged["timing"] = state["timing"] or merged["timing"]
        for part in ("results", "shift_baseline"):
            for task, by_method in state[part].items():
                for method, rows in by_method.items():
                    for row in rows:
                        record(merged[part], task, method, row, quiet=True)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = out_path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(merged, indent=2))
        os.replace(temporary, out_path)
        return merged

    whisper = [b for b in backbones if b.startswith("whisper")]
    if "encoding" not in skip and whisper:
        state["encoding"].update(run_encoding(data, args, whisper))
        save()
    if "timing" not in skip:
        state["timing"] = run_timing(data, args, backbones)
        save()
    if "words" not in skip:
        for per_class in [int(k) for k in str(args.per_class).split(",")]:
            task = f"words@{per_class}"
            for method, backbone in _runs(methods, backbones):
                for seed in range(args.seeds):
                    labeled = datasets.few_shot(train["y"], per_class, seed)
                    X = [train["clean"][i] for i in labeled]
                    outcome = run_method(method, backbone, X, train["y"][labeled], test["clean"], test["y"], seed, args)
                    record(state["results"], task, method, outcome)
                    save()
    if "shift" not in skip:
        for seed in range(args.seeds):
            labeled = datasets.few_shot(train["y"], args.shift_per_class, seed)
            # the no-transfer reference: the log-mel baseline trained on the clean clips, tested on the noisy ones
            record(state["shift_baseline"], "clean→noisy", "baseline", run_method(
                "baseline", None, [train["clean"][i] for i in labeled], train["y"][labeled], test["noisy"], test["y"],
                seed, args))
            for method, outcome in run_shift(data, labeled, seed, args).items():
                record(state["results"], "clean→noisy", method, outcome)
            save()
    merged = save()
    body = render(merged, merged["meta"])
    print(body)
    if not args.smoke and args.docs:
        write_section(ROOT / "docs" / "benchmarks.md", "audio", "Spoken words (espeak-ng): transfer, baseline, adaptation", body)
    return 0


# --------------------------------------------------------------------------- the tables


def _mean_std(values) -> tuple[float, float]:
    values = list(values)
    return statistics.fmean(values), (statistics.pstdev(values) if len(values) > 1 else 0.0)


def _cell(rows: list | None, seconds: bool = True) -> str:
    if not rows:
        return "–"
    mean, spread = _mean_std(r["accuracy"] for r in rows)
    text = f"{mean:.3f} ± {spread:.3f}"
    if seconds:
        text += f" ({statistics.fmean(r['seconds'] for r in rows):.0f} s)"
    return text + (f" [{len(rows)} seeds]" if len(rows) < _cell.seeds else "")


_cell.seeds = 3


def render(state: dict, meta: dict) -> str:
    results = state.get("results", {})
    _cell.seeds = meta.get("seeds", 3)
    lines = [f"Measured {meta['date']} on {meta['machine']} (CPU, shared with other jobs: seconds are indicative), "
             f"torch {meta['torch']}, headstart {meta['headstart']}; up to {meta['epochs']} epochs, planner budget "
             f"{meta['budget']}. {meta['words']} words; {meta['n_train_clips']} clips from the training voices, "
             f"{meta['n_test_clips']} from held-out test voices; chance 1/{meta['words']}. Test accuracy mean ± std over "
             f"seeds (mean fit seconds; a cell run on fewer seeds says how many). `python -m bench.audio`.", ""]
    encoding, timing = state.get("encoding") or {}, state.get("timing") or {}
    if encoding:
        first = next(iter(encoding.values()))
        lines += [f"Clip-length encoding (the clip's own frames, the default) against Whisper's padded 30-s encoding "
                  f"(3,000 mel frames), on {first['n_pool']} training-voice clips ({first['n_pool'] // meta['words']} per "
                  f"word, the probes' pool) and {first['n_test']} test-voice clips: cosine of a clip's two pooled "
                  "features at the last layer, median (minimum), and the linear probe's head on each, same draws "
                  "(test accuracy mean ± std over seeds; difference clip-length − padded, mean [min, max] over seeds):", "",
                  "| backbone | cosine, last layer | per word | clip-length | padded | difference |", "|---|---|---|---|---|---|"]
        for name, row in encoding.items():
            cos = row["cosine"][row["last_layer"]]
            for per_class, probes in row["probe"].items():
                clip, padded = _mean_std(p["clip"] for p in probes), _mean_std(p["padded"] for p in probes)
                diff = [p["clip"] - p["padded"] for p in probes]
                lines.append(f"| {name} | {cos['median']:.3f} ({cos['min']:.3f}) | {per_class} | {clip[0]:.3f} ± {clip[1]:.3f}"
                             f" | {padded[0]:.3f} ± {padded[1]:.3f} | {100 * statistics.fmean(diff):+.1f} pts "
                             f"[{100 * min(diff):+.1f}, {100 * max(diff):+.1f}] |")
        lines += ["", "Cosine per layer group, median (minimum): " + "; ".join(
            f"{name}: " + ", ".join(f"{layer} {c['median']:.3f} ({c['min']:.3f})" for layer, c in row["cosine"].items())
            for name, row in encoding.items()), ""]
    if timing:
        lines += [f"Feature extraction, seconds per clip ({timing['clips']} test clips of {timing['min_seconds']:.2f}-"
                  f"{timing['max_seconds']:.2f} s, mean {timing['mean_seconds']:.2f} s, in one batch; log-mels + encoder "
                  f"from decoded waves; {timing['threads']} torch threads; median of {timing['rounds']} rounds, every "
                  "extractor once per round in turn):", "", "| extractor | seconds per clip | clip-length speed-up |",
                  "|---|---|---|"]
        for name, row in timing["seconds_per_clip"].items():
            backbone = name.split(":")[0]
            speed = timing.get("speedup", {}).get(backbone) if name.endswith(":clip-length") else None
            speed_text = f"{speed['median']:.1f}× (rounds {speed['min']:.1f}-{speed['max']:.1f}×)" if speed else ""
            lines.append(f"| {name} | {row['median']:.4f} | {speed_text} |")
        lines.append("")
    word_tasks = [t for t in results if t.startswith("words@")]
    if word_tasks:
        lines += ["Spoken words: `words@k` trains on k clean clips per word from the training voices and tests on every "
                  "clean test-voice clip. The log-mel baseline and the planner (`strategy=\"auto\"`, `backbone=\"auto\"`: "
                  "every installed audio backbone ranked by LogME) have one cell each.", "",
                  "| task | backbone | " + " | ".join(STRATEGIES) + " |", "|---" * (len(STRATEGIES) + 2) + "|"]
        blank = " |" * (len(STRATEGIES) - 1)
        for task in word_tasks:
            for backbone in BACKBONES:
                if any(rows_of(results, task, s, backbone) for s in STRATEGIES):
                    lines.append(f"| {task} | {backbone} | "
                                 + " | ".join(_cell(rows_of(results, task, s, backbone)) for s in STRATEGIES) + " |")
            if rows_of(results, task, "baseline"):
                lines.append(f"| {task} | log-mel baseline (no transfer) | {_cell(rows_of(results, task, 'baseline'))} |" + blank)
            if auto := rows_of(results, task, "auto"):
                chosen = "; ".join(f"seed {r['seed']}: {r['chosen']}" for r in auto)
                lines.append(f"| {task} | planner | {_cell(auto)} | chose {chosen} |" + blank[2:])
        lines.append("")
    shift_baseline = rows_of(state.get("shift_baseline") or {}, "clean→noisy", "baseline")
    if "clean→noisy" in results or shift_baseline:
        by_method = {**({"baseline": shift_baseline} if shift_baseline else {}), **results.get("clean→noisy", {})}
        lines += [f"Clean → noisy on `{meta.get('shift_backbone')}` (pink noise at {meta['snr']:g} dB SNR; "
                  f"{meta['shift_per_class']} labeled clean clips per word; every noisy training-voice clip unlabeled; "
                  "tested on the noisy test voices; the adapters fine-tune with the target inputs):", "",
                  "| method | noisy test accuracy | chosen by adapt=auto |", "|---|---|---|"]
        for method in SHIFT_METHODS:
            if method in by_method:
                chosen = "; ".join(f"seed {r['seed']}: {r['chosen']}" for r in by_method[method] if "chosen" in r)
                name = "log-mel baseline, trained on clean" if method == "baseline" else method
                lines.append(f"| {name} | {_cell(by_method[method])} | {chosen} |")
        candidates = sorted({c for r in by_method.get("auto", []) for c in r.get("candidates", [])})
        if candidates:
            lines += ["", f"`adapt=\"auto\"` chose among {', '.join(candidates)} (each at weight 1) without target "
                          "labels: information maximization on the noisy inputs, guarded by DEV's importance-weighted "
                          "risk on held-out clean rows (headstart.adapt.select)."]
    while lines and not lines[-1]:
        lines.pop()
    lines += ["", *checks(state)]
    return "\n".join(lines).rstrip()


def checks(state: dict) -> list[str]:
    """Issue 25's done-when bars, each as measured here ("not run" where a part is missing)."""
    results, timing = state.get("results", {}), state.get("timing") or {}
    mean = lambda rows: statistics.fmean(r["accuracy"] for r in rows) if rows else None
    verdict = lambda ok: "met" if ok else "not met"
    out = ["Issue 25's bars, as measured here:", ""]
    auto5, base5 = rows_of(results, "words@5", "auto"), rows_of(results, "words@5", "baseline")
    if auto5:
        transfer = sum(not r["chosen"].startswith("baseline") for r in auto5)
        reference = f" (log-mel baseline {mean(base5):.3f})" if base5 else ""
        out.append(f"- words@5, planner ≥ 0.89 and a transfer model kept: {mean(auto5):.3f}, transfer model on "
                   f"{transfer}/{len(auto5)} seeds{reference}: {verdict(mean(auto5) >= 0.89 and transfer == len(auto5))}")
    else:
        out.append("- words@5, planner ≥ 0.89 keeping a transfer model: not run")
    auto20, base20 = rows_of(results, "words@20", "auto"), rows_of(results, "words@20", "baseline")
    out.append(f"- words@20, planner ≥ log-mel baseline: {mean(auto20):.3f} against {mean(base20):.3f}: "
               f"{verdict(mean(auto20) >= mean(base20))}" if auto20 and base20 else "- words@20, planner ≥ log-mel baseline: not run")
    shift = results.get("clean→noisy", {})
    baseline = rows_of(state.get("shift_baseline") or {}, "clean→noisy", "baseline")
    if shift.get("source_only") and baseline:
        out.append(f"- clean→noisy, source-only fine-tune > log-mel baseline trained on clean: {mean(shift['source_only']):.3f} "
                   f"against {mean(baseline):.3f}: {verdict(mean(shift['source_only']) > mean(baseline))}")
    else:
        out.append("- clean→noisy, source-only fine-tune > log-mel baseline: not run")
    if shift.get("auto") and shift.get("source_only"):
        out.append(f"- clean→noisy, adapt=auto ≥ source-only: {mean(shift['auto']):.3f} against {mean(shift['source_only']):.3f}: "
                   f"{verdict(mean(shift['auto']) >= mean(shift['source_only']))}")
    else:
        out.append("- clean→noisy, adapt=auto ≥ source-only: not run")
    speedups = timing.get("speedup") or {}
    if speedups:
        out.append("- clip-length encoding ≥ 5× faster than padded: " + ", ".join(
            f"{name} {row['median']:.1f}× ({verdict(row['median'] >= 5)})" for name, row in speedups.items()))
    else:
        out.append("- clip-length encoding ≥ 5× faster than padded: not run")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
