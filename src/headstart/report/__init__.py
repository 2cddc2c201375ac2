"""The comparative report: one self-contained HTML page per run folder (``headstart report``).

:func:`build_report` shows what the run chose and why (the planner's candidates and verdict), the
backbone/layer ranking, and, given labeled test data, test accuracy with 95% intervals for the
chosen model and the no-transfer baseline, the confusion matrix, per-class scores and a learning
curve (how many labeled examples per class each needs). Figures are inline base64 PNGs (matplotlib,
Agg); the same numbers are written to ``RUN_DIR/metrics.json`` under ``report``.
"""

from .build import DEFAULT_CURVE_SIZES, build_report, check_curve_sizes

__all__ = ["DEFAULT_CURVE_SIZES", "build_report", "check_curve_sizes"]
