"""Fixed-seed fits of every strategy and the planner on the bundled data, recorded and compared.

A refactor that is meant to change no behaviour must give these fits the same predictions and
probabilities to the last digit. ``python -m bench.golden --record`` writes them to
``tests/golden/fixed_fits.json``; ``python -m bench.golden`` fits them again and prints, per fit,
whether the predicted labels match and the largest difference of a predicted probability.
``tests/test_golden.py`` runs them all in the suite (about 40 s).

Records are kept per CPU instruction set (torch's ``get_cpu_capability``: AVX2, AVX512, ...), because
the same fit on another instruction set sums in another order: an AVX2 and an AVX512 machine differ
by up to 0.007 in a probability on the same code. A fit is compared to the last digit (1e-6) with the
record of this machine's instruction set; where that has no record of it, with another set's record,
labels and planner choices exactly and probabilities to ``CROSS_MACHINE_TOLERANCE``.

Inputs: the bundled VADER movie-review sentences (text, ``minilm_l6``) and scikit-learn's digits
(8×8 images at 32 px, ``efficientnet_lite0``; and the same pixels as feature vectors), small
enough that every fit takes seconds; two torch threads, the CI machine's core count.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden" / "fixed_fits.json"
THREADS = 2
SAME_MACHINE_TOLERANCE = 1e-6
# 3x the largest gap seen between an AVX2 and an AVX512 machine on unchanged code (0.0067)
CROSS_MACHINE_TOLERANCE = 0.02


def cpu_capability() -> str:
    """The instruction set torch's CPU kernels use here, e.g. ``"AVX2"`` or ``"AVX512"``."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def reference(recorded: dict, name: str, capability: str) -> tuple[dict, float, str]:
    """``(record, probability tolerance, its instruction set)`` to compare fit ``name`` with here.

    ``recorded`` maps instruction set -> fit name -> record. This machine's own record wins; otherwise
    the first other set that has one, at the looser cross-machine tolerance.
    """
    if name in recorded.get(capability, {}):
        return recorded[capability][name], SAME_MACHINE_TOLERANCE, capability
    for other in sorted(recorded):
        if name in recorded[other]:
            return recorded[other][name], CROSS_MACHINE_TOLERANCE, other
    raise KeyError(f"no golden record of {name!r} in {GOLDEN} for any instruction set; "
                   f"record it with `python -m bench.golden --record --only {name}`")


def _pick(labels: np.ndarray, per_class: int, skip: int = 0) -> np.ndarray:
    """The first ``per_class`` rows of every class after skipping ``skip`` of each, in row order."""
    rows = [np.flatnonzero(labels == c)[skip: skip + per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(rows))


def text_data(per_class: int):
    from headstart.datasets import load_vader_movie_sample

    texts, labels = load_vader_movie_sample()
    train, test = _pick(labels, per_class), _pick(labels, 20, skip=100)
    return [texts[i] for i in train], labels[train], [texts[i] for i in test], labels[test]


def digit_data(per_class: int, as_features: bool = False):
    from headstart.datasets import load_digits_images

    images, labels = load_digits_images()
    train, test = _pick(labels, per_class), _pick(labels, 6, skip=100)
    if as_features:
        images = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return images[train], labels[train], images[test], labels[test]


# name -> (data, estimator parameters); adapt fits get the test inputs as X_target
TEXT, TEXT30, DIGITS, FEATURES = "text@8", "text@30", "digits@5", "features@5"
FITS = {
    "text-linear_probe": (TEXT, {"strategy": "linear_probe"}),
    "text-linear_probe-C": (TEXT, {"strategy": "linear_probe", "C": 0.5}),
    "text-finetune-freeze": (TEXT, {"strategy": "finetune", "freeze": 5, "epochs": 2}),
    "text-lp_ft-smoothing": (TEXT, {"strategy": "lp_ft", "epochs": 2, "label_smoothing": 0.1}),
    "text-lora": (TEXT, {"strategy": "lora", "epochs": 2, "lora_rank": 4}),
    "text-scratch": (TEXT, {"strategy": "scratch", "epochs": 1, "max_length": 16}),
    "text-finetune-l2_sp": (TEXT, {"strategy": "finetune", "freeze": 5, "epochs": 2, "regularizer": "l2_sp"}),
    "text-linear_probe-coral": (TEXT, {"strategy": "linear_probe", "adapt": "coral"}),
    "text-finetune-mmd": (TEXT, {"strategy": "finetune", "freeze": 5, "epochs": 2, "adapt": "mmd"}),
    "text-linear_probe-adapt_auto": (TEXT, {"strategy": "linear_probe", "adapt": "auto"}),
    # the text planner is pinned to minilm_l6: backbone="auto" ranks every installed text model, so the fit
    # would change with what `models pull` installed (mpnet_base), not with the code
    "text-auto": (TEXT, {"strategy": "auto", "backbone": "minilm_l6", "epochs": 2}),
    "text30-auto": (TEXT30, {"strategy": "auto", "backbone": "minilm_l6", "epochs": 2}),
    "digits-linear_probe": (DIGITS, {"strategy": "linear_probe", "image_size": 32}),
    "digits-finetune-mix": (DIGITS, {"strategy": "finetune", "freeze": 2, "epochs": 3, "image_size": 32,
                                     "mixup": 0.2, "average_checkpoints": 2}),
    "digits-lp_ft": (DIGITS, {"strategy": "lp_ft", "epochs": 2, "image_size": 32}),
    "digits-auto": (DIGITS, {"strategy": "auto", "epochs": 2, "image_size": 32}),
    "features-linear_probe": (FEATURES, {"strategy": "linear_probe", "backbone": "precomputed"}),
    "features-auto": (FEATURES, {"strategy": "auto", "backbone": "precomputed", "epochs": 2}),
}


def load(data: str):
    if data == TEXT:
        return text_data(8)
    if data == TEXT30:
        return text_data(30)
    if data == DIGITS:
        return digit_data(5)
    return digit_data(5, as_features=True)


def run_fit(name: str) -> dict:
    """Fit ``name`` from a fresh estimator and return what it predicted on its test inputs."""
    from headstart import TransferClassifier

    data, params = FITS[name]
    X, y, X_test, _ = load(data)
    extra = {"X_target": X_test} if params.get("adapt") else {}
    with tempfile.TemporaryDirectory() as cache, contextlib.redirect_stdout(sys.stderr):
        started = time.perf_counter()
        clf = TransferClassifier(**params, cache_dir=cache, random_state=0, verbose=0).fit(X, y, **extra)
        seconds = time.perf_counter() - started
        probabilities = clf.predict_proba(X_test)
        predicted = clf.predict(X_test)
    record = {"predicted": [str(v) for v in predicted], "probabilities": probabilities.tolist(),
              "seconds": round(seconds, 1)}
    if getattr(clf, "plan_", None):
        record["winner"] = clf.plan_["winner"]
        record["candidate_means"] = {c["name"]: c["mean"] for c in clf.plan_["candidates"] if c["status"] == "scored"}
    return record


def compare(name: str, recorded: dict, now: dict) -> tuple[bool, float]:
    """``(same labels (and planner choices), largest probability difference)``."""
    same = recorded["predicted"] == now["predicted"]
    same = same and recorded.get("winner") == now.get("winner")
    same = same and recorded.get("candidate_means") == now.get("candidate_means")
    gap = float(np.max(np.abs(np.asarray(recorded["probabilities"]) - np.asarray(now["probabilities"]))))
    return same, gap


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write the fits to tests/golden/fixed_fits.json")
    parser.add_argument("--only", nargs="*", default=None, help="fit only these names")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    names = args.only or list(FITS)
    recorded = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    capability = cpu_capability()
    failures = 0
    for name in names:
        now = run_fit(name)
        if args.record:
            recorded.setdefault(capability, {})[name] = now
            print(f"{name}: recorded for {capability} ({now['seconds']} s)")
            continue
        record, tolerance, source = reference(recorded, name, capability)
        same, gap = compare(name, record, now)
        failures += not (same and gap <= tolerance)
        print(f"{name}: labels {'same' if same else 'DIFFER'}, largest probability difference {gap:.3g} "
              f"against the {source} record ({now['seconds']} s)")
    if args.record:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(recorded, indent=1) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
