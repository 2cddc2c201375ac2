"""The report's figures, drawn with matplotlib's Agg backend and returned as base64 PNG strings.

Each function takes plain numbers (what ``metrics.json`` records) and returns the payload of a
``data:image/png;base64,...`` URL, so the page needs no file next to it and no network.
"""

from __future__ import annotations

import base64
import io
import math

TRANSFER_COLOUR = "#2563eb"
BASELINE_COLOUR = "#ea580c"
MUTED_COLOUR = "#9ca3af"
WINNER_EDGE = "#111827"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display, no GUI toolkit: the same on every machine
    import matplotlib.pyplot as plt

    return plt


def _encode(figure) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        figure.tight_layout()
        figure.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def ranking_plot(ranking: list[dict]) -> str:
    """LogME (or another score) per layer group, one line per backbone; the best layer of each marked."""
    plt = _pyplot()
    backbones = list(dict.fromkeys(row["backbone"] for row in ranking))
    figure, axis = plt.subplots(figsize=(8, 3.6))
    colours = plt.get_cmap("tab10")
    for i, name in enumerate(backbones):
        rows = sorted((r for r in ranking if r["backbone"] == name), key=lambda r: r["layer_index"])
        x = [r["layer_index"] for r in rows]
        y = [r["score"] for r in rows]
        axis.plot(x, y, marker="o", color=colours(i % 10), label=name)
        best = max(rows, key=lambda r: r["score"])
        axis.scatter([best["layer_index"]], [best["score"]], s=140, facecolors="none", edgecolors=colours(i % 10),
                     linewidths=2, zorder=3)
        axis.annotate(best["layer"], (best["layer_index"], best["score"]), textcoords="offset points",
                      xytext=(6, 6), fontsize=8, color=colours(i % 10))
    score_name = ranking[0].get("score_name", "score") if ranking else "score"
    axis.set_xlabel("layer group (0 = input side)")
    axis.set_ylabel(f"{score_name} (higher is better)")
    axis.set_title("Transferability of each layer group's features (circled: best layer)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _encode(figure)


def candidates_plot(candidates: list[dict], winner: str | None) -> str:
    """Held-out accuracy (mean ± std) and training seconds of every candidate the planner tried."""
    plt = _pyplot()
    names = [c["name"] for c in candidates]
    height = max(2.4, 0.45 * len(names) + 1.2)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, height), sharey=True,
                                         gridspec_kw={"width_ratios": [3, 2]})
    positions = list(range(len(names)))[::-1]  # first candidate on top
    for position, c in zip(positions, candidates):
        scored = c["status"] == "scored" and not _nan(c.get("mean"))
        colour = MUTED_COLOUR if not scored else (BASELINE_COLOUR if c["kind"] == "baseline" else TRANSFER_COLOUR)
        edge = WINNER_EDGE if c["name"] == winner else colour
        if scored:
            left.barh(position, c["mean"], xerr=c.get("std") or 0.0, color=colour, edgecolor=edge,
                      linewidth=2 if c["name"] == winner else 0.5, capsize=3)
            left.text(min(c["mean"] + (c.get("std") or 0) + 0.01, 0.98), position, f"{c['mean']:.3f}",
                      va="center", fontsize=8)
        else:
            left.text(0.01, position, c["status"], va="center", fontsize=8, color="#4b5563")
        right.barh(position, c.get("seconds") or 0.0, color=colour, edgecolor=edge,
                   linewidth=2 if c["name"] == winner else 0.5)
    left.set_yticks(positions, names, fontsize=8)
    left.set_xlim(0, 1.05)
    left.set_xlabel("held-out accuracy (over all held-out predictions; error bar: std across folds)")
    left.grid(axis="x", alpha=0.3)
    right.set_xlabel("seconds (scoring fits)")
    right.grid(axis="x", alpha=0.3)
    figure.suptitle("Candidates: orange = no-transfer baseline, blue = transfer, grey = not scored; "
                    "black edge = chosen", fontsize=9)
    return _encode(figure)


def confusion_plot(labels: list[str], matrix: list[list[int]]) -> str:
    """Confusion matrix, counts in the cells; rows are the true class."""
    import numpy as np

    plt = _pyplot()
    counts = np.asarray(matrix, dtype=float)
    size = min(8.0, max(3.6, 0.32 * len(labels) + 2.0))
    figure, axis = plt.subplots(figsize=(size + 1.0, size))
    row_sums = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    if len(labels) <= 30:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if counts[i, j]:
                    axis.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=8,
                              color="white" if shares[i, j] > 0.6 else "#111827")
    ticks = range(len(labels))
    axis.set_xticks(ticks, labels, rotation=45 if max(map(len, labels), default=0) > 3 else 0, ha="right"
                    if max(map(len, labels), default=0) > 3 else "center", fontsize=8)
    axis.set_yticks(ticks, labels, fontsize=8)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    axis.set_title("Chosen model on the test data\n(counts; colour: share of the true class)", fontsize=10)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    return _encode(figure)


def learning_curve_plot(curves: list[dict]) -> str:
    """Test accuracy against labeled examples per class, mean ± std over the random draws."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 4))
    for curve in curves:
        points = [p for p in curve["points"] if not _nan(p["mean"])]
        if not points:
            continue
        colour = BASELINE_COLOUR if curve["kind"] == "baseline" else TRANSFER_COLOUR
        x = [p["per_class"] for p in points]
        mean = [p["mean"] for p in points]
        std = [p["std"] for p in points]
        axis.errorbar(x, mean, yerr=std, marker="o", capsize=4, color=colour, label=curve["label"])
        axis.fill_between(x, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                          color=colour, alpha=0.12)
    axis.set_xscale("log")
    sizes = sorted({p["per_class"] for c in curves for p in c["points"]})
    if sizes:
        axis.set_xticks(sizes, [str(s) for s in sizes])
        axis.minorticks_off()
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("labeled training examples per class (log scale)")
    axis.set_ylabel("test accuracy")
    axis.set_title("Data needed: transfer vs the no-transfer baseline")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    return _encode(figure)


def adaptation_view_plot(view: dict) -> str:
    """Source and target features in 2-D (PCA), as the pre-trained backbone sees them and after adapting."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for axis, key, title in ((axes[0], "before", "before: pre-trained features"),
                             (axes[1], "after", "after: what the adapted head reads")):
        panel = view[key]
        for name, colour, marker in (("source", TRANSFER_COLOUR, "o"), ("target", BASELINE_COLOUR, "^")):
            points = panel[name]
            if points:
                axis.scatter([p[0] for p in points], [p[1] for p in points], s=10, alpha=0.55, color=colour,
                             marker=marker, label=f"{name} ({len(points)})")
        share = sum(panel["explained_variance"])
        accuracy = panel.get("domain_accuracy")
        told = f"domain classifier accuracy {accuracy:.2f}" if accuracy is not None else "too few points to score"
        axis.set_title(f"{title}\n{told}; PCA keeps {100 * share:.0f}% of the variance", fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.legend(fontsize=8, loc="best")
    figure.suptitle("Source (blue) and target (orange) features; overlapping clouds mean aligned domains\n"
                    "(domain classifier accuracy 0.5 = indistinguishable, 1.0 = separated)", fontsize=9)
    return _encode(figure)


def _nan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
