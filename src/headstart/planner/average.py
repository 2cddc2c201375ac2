"""The averaged candidate: the no-transfer baseline and the best transfer candidate, their class
probabilities averaged.

Two models whose errors differ make fewer errors together than either alone (Dietterich 2000,
"Ensemble Methods in Machine Learning", §2; Hansen & Salamon 1990). The no-transfer baseline
(logistic regression on pixels, TF-IDF or log-mels) and a transfer model read different evidence,
so their errors differ most: on Fashion-MNIST at 10 per class, pixel logistic regression (0.720)
and the frozen probe (0.682) disagree on about a third of the test images. The average costs no
extra fit to score: both members were scored on the same held-out examples, and the average of
their stored probabilities is scored on them too::

    p_avg(x) = (p_baseline(x) + p_transfer(x)) / 2          # (n_held_out, n_classes)

It is kept only when it beats both members on those examples and leads the decision's winner by
more than one paired standard error (:func:`keeps_average`); otherwise the decision stands.
"""

from __future__ import annotations

import numpy as np

from .candidates import Candidate, paired_standard_error, rank_key


def averaged_candidate(scored: list[Candidate], truth: np.ndarray, split_sizes: list[int]) -> Candidate | None:
    """The average of the baseline and the best transfer candidate, scored on the held-out examples
    both were scored on (``truth``: their labels, splits in order, ``split_sizes`` held out per split);
    None unless both were scored."""
    base = next((c for c in scored if c.kind == "baseline"), None)
    transfer = [c for c in scored if c.kind == "transfer"]
    if base is None or not transfer:
        return None
    best = max(transfer, key=rank_key)
    if not (len(base.probabilities) == len(best.probabilities) == len(truth)) or not len(truth):
        return None
    mean = (np.asarray(base.probabilities) + np.asarray(best.probabilities)) / 2
    average = Candidate(f"average({base.name}, {best.name})", "average", "average", best.backbone,
                        options={"members": [base.name, best.name]}, status="scored",
                        seconds=base.seconds + best.seconds)
    average.correct = [int(h) for h in mean.argmax(1) == truth]
    average.log_loss = [float(-np.log(max(p, 1e-12))) for p in mean[np.arange(len(truth)), truth]]
    average.probabilities = mean.tolist()
    ends = np.cumsum(split_sizes)
    average.scores = [float(np.mean(average.correct[end - size:end])) for size, end in zip(split_sizes, ends)]
    return average


def keeps_average(average: Candidate, members: list[Candidate], winner: Candidate) -> bool:
    """Whether the average replaces ``winner``: it beats both members on the held-out examples, and
    leads the winner by more than one paired standard error (a lead of one example out of n is one
    standard error, so it never counts)."""
    if any(average.mean <= member.mean for member in members):
        return False
    return average.mean - winner.mean > paired_standard_error(average, winner) + 1e-9
