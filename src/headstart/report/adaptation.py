"""The report's domain-adaptation section: source-only against adapted, and the 2-D view of the shift.

A run fitted with ``adapt=...`` records, in ``metrics.json``, the adaptation term it trained with
and a before/after picture of source and target features (:mod:`headstart.adapt.view`); with
``adapt="auto"`` also every candidate's validator score, and, when adapting won, the source-only
candidate itself in ``RUN_DIR/source_only/`` (an ordinary run folder). Given labeled target data,
this section scores that source-only model and the chosen model on the same examples, so the page
answers "did adapting help on my target data?" with an interval.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SOURCE_ONLY_FOLDER = "source_only"


def summarize_adaptation(clf) -> dict | None:
    """What the run adapted with and how it chose, or ``None`` for a run without adaptation."""
    summary = dict(getattr(clf, "fit_summary_", {}) or {})
    record = summary.get("adaptation")
    if not clf.adapt and record is None:
        return None
    view = summary.get("adaptation_view")
    return {
        "requested": clf.adapt,
        "chosen": record["chosen"] if record else clf.adapt,
        "validator": record["validator"] if record else None,
        "candidates": list(record["candidates"]) if record else [],
        "dev_gate": record.get("dev_gate") if record else None,
        "loss_terms": summary.get("loss_terms", []),
        "adapted_on": summary.get("adapted_on") or ("fine-tuning" if summary.get("frozen_groups") is not None else None),
        "target_inputs": summary.get("target_inputs"),
        "_view": view,  # drawn, not repeated in metrics.json (the fit summary there already holds it)
        "domain_accuracy": ({"before": view["before"]["domain_accuracy"], "after": view["after"]["domain_accuracy"]}
                            if view else None),
        "test": None,
    }


def score_source_only(folder: Path, data, chosen_test: dict) -> dict | None:
    """Source-only against the chosen model on all of ``data`` (paired), when the run kept a source-only model."""
    from ..data import check_labels_known
    from ..estimator import TransferClassifier
    from ..intervals import accuracy_interval, format_accuracy, paired_bootstrap_difference

    path = Path(folder) / SOURCE_ONLY_FOLDER
    if not (path / "config.json").is_file():
        return None
    source_only = TransferClassifier.load(path)
    y_true = check_labels_known(data.labels, source_only.classes_, data.source, path)
    predicted = np.array([str(label) for label in source_only.predict(data)], dtype=object)
    accuracy, low, high = accuracy_interval(y_true, predicted)
    diff, d_low, d_high = paired_bootstrap_difference(y_true, chosen_test["_predicted"], predicted)
    return {"accuracy": accuracy, "low": low, "high": high, "text": format_accuracy(accuracy, low, high),
            "n_examples": int(len(y_true)),
            "adapted_minus_source_only": diff, "low_difference": d_low, "high_difference": d_high,
            "difference_text": f"{100 * diff:+.1f} points [{100 * d_low:+.1f}, {100 * d_high:+.1f}]",
            "meaning": ("the data cannot tell them apart" if d_low <= 0 <= d_high else
                        "adapting helped" if d_low > 0 else "adapting hurt")}
