"""How the commands print: plain-text tables, numbers that may be missing, and the lines
``headstart fit`` prints about a finished fit."""

from __future__ import annotations

from pathlib import Path


def table(header: list, rows: list[list]) -> str:
    """A plain-text table: numbers right-aligned, text left-aligned, two spaces between columns."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(len(header))]

    def line(row):
        return "  ".join(c.rjust(w) if numeric[i] else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fmt(value) -> str:
    """Three decimals, or ``n/a`` for a missing (None or NaN) number."""
    return "n/a" if value is None or value != value else f"{value:.3f}"


def shorten(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def adaptation_count(record: dict) -> str:
    """'16 adaptation candidates', or '9 adaptation candidates, 7 more skipped by the budget'."""
    skipped = sum(row.get("status") == "skipped" for row in record["candidates"])
    fitted = len(record["candidates"]) - skipped
    return f"{fitted} adaptation candidates" + (f", {skipped} more skipped by the budget" if skipped else "")


def _validation_text(summary: dict) -> str:
    """The validation accuracy, with its 95% interval when it was measured on few predictions."""
    from ..intervals import format_accuracy, needs_interval, wilson_interval

    val = summary.get("val_accuracy")
    val_text = _fmt(val)
    n_val = int(summary.get("n_val_scored") or summary.get("n_val") or 0)  # the planner pools its splits' held-out parts
    if val_text != "n/a" and n_val and needs_interval(n_val):
        # a Wilson interval from the accuracy and the count (the validation predictions are gone)
        val_text = format_accuracy(val, *wilson_interval(round(val * n_val), n_val)) + " (95% interval" + (
            f"; {n_val} held-out predictions over {summary['splits']} folds)" if summary.get("splits", 1) > 1 else ")")
    return val_text


def _training_line(clf, summary: dict) -> str:
    """What the final model was trained on. The planner's winner is either kept as scored (its split's
    training part) or refit on every labeled example: then its scoring folds' sizes are not the model's."""
    sizes = f"{summary['n_train']} / {summary['n_val']} examples"
    if "verdict" not in summary:
        return f"train / validation:  {sizes}"
    if not (getattr(clf, "plan_", None) or {}).get("winner_refit", True):
        return f"train / validation:  {sizes} (the final model, kept as scored on the planner's split)"
    scored_on = (f"{summary['splits']} folds of {sizes}" if summary.get("splits", 1) > 1
                 else f"the planner's split, {sizes}")
    n_labeled = summary.get("n_labeled", summary["n_train"] + summary["n_val"])
    return f"final model:         refit on all {n_labeled} labeled examples (candidates were scored on {scored_on})"


def fit_summary_lines(clf, folder) -> list[str]:
    """What `headstart fit` prints about a finished fit, one line each."""
    summary = clf.fit_summary_
    lines = [
        f"strategy:            {summary['strategy']}",
        f"backbone:            {summary['backbone']} ({summary['modality']})",
        f"classes:             {len(clf.classes_)} ({shorten(', '.join(map(str, clf.classes_)))})",
        _training_line(clf, summary),
        f"validation accuracy: {_validation_text(summary)}",
        f"fit time:            {summary['fit_seconds']:.1f} s" + (
            f" ({adaptation_count(summary['adaptation'])}; the kept one's own fit "
            f"{summary['chosen_fit_seconds']:.1f} s)" if "chosen_fit_seconds" in summary else ""),
        f"skipped inputs:      {len(clf.skipped_)}",
    ]
    if summary.get("resumed_after_epoch") is not None:
        lines.insert(-1, f"resumed:             after epoch {summary['resumed_after_epoch']} of the interrupted fit "
                         f"({summary['epochs_run']} epochs in all; the fit time is this session's)")
    lines += [f"  - {item['where']}: {item['reason']}" for item in clf.skipped_]
    if "verdict" in summary:
        lines.append(f"chosen:              {summary['chosen']} — {summary['verdict']} (see plan.json)")
    if "adaptation" in summary:
        record = summary["adaptation"]
        lines.append(f"adaptation:          {record['chosen']}, chosen by {record['validator']}"
                     + (" (source_only/ holds the unadapted model, for `report` to compare on target data)"
                        if record["chosen"] != "source_only" else ""))
    elif clf.adapt:
        lines.append(f"adaptation:          {clf.adapt}")
    lines.append(f"run folder:          {Path(folder).absolute()}")
    return lines
