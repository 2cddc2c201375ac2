"""The planner's choice among scored candidates, and the rule that made it.

Among transfer candidates, the ladder's *default rung* (the better of the defaults on the held-out
examples, :func:`~.candidates.settled_default`) wins unless another candidate beats it on the same
held-out examples with the 95% interval of their *paired* difference above zero, Bonett & Price's
adjusted Wald interval (:func:`~headstart.intervals.paired_difference_interval`): with a dozen
held-out examples a lead of a few is noise, and the plain Wald interval called a 4-0 split of 13 a
lead (docs/benchmarks.md, planner section).
The no-transfer baseline replaces that choice when it beats every transfer candidate and leads the
kept one on the same terms, its paired interval above zero: that is negative transfer.
Without a default rung, the cheapest candidate within one paired standard error of the best wins
(the one-standard-error rule of Breiman et al. 1984, "Classification and Regression Trees",
§3.4.3; Hastie et al., "Elements of Statistical Learning", §7.10), and the baseline is kept when
it matches or beats the best transfer candidate: there is no default to fall back on. Last, the
average of the baseline's and the best transfer candidate's probabilities replaces that choice
when it beats both and leads the choice by more than one paired standard error (:mod:`.average`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .average import keeps_average
from .candidates import Candidate, paired_difference, paired_standard_error, rank_key, settled_default

# Why the winner won: the rule of choose_winner that decided.
# the baseline beats every transfer candidate and is shown better than the kept one (no default: matches the best)
NEGATIVE_TRANSFER = "negative_transfer"
NO_TRANSFER_CANDIDATE = "no_transfer_candidate"  # nothing but the baseline was scored
DEFAULT_KEPT = "default_kept"  # the default rung, no other shown better
DEPARTED_FROM_DEFAULT = "departed_from_default"  # another beat the default with its paired interval above zero
CHEAPEST_WITHIN_ONE_SE = "cheapest_within_one_se"  # no default: the cheapest close to the best (or the best)
AVERAGED = "averaged"  # the baseline's and the best transfer candidate's probabilities averaged beat both and the choice


@dataclass(frozen=True)
class Decision:
    """What the planner chose and why; ``plan_``, the log and the report only format it."""

    winner: Candidate
    rule: str
    best_transfer: Candidate | None
    baseline: Candidate | None
    default: Candidate | None  # the default rung that counted, if one was scored
    negative_transfer: bool
    held_out: int  # held-out predictions behind every score (their intervals are over this many)
    displaced: Candidate | None = None  # negative transfer with a default: the transfer model the baseline replaced


def shown_better(a: Candidate, b: Candidate) -> bool:
    """Whether ``a`` beats ``b`` with the 95% interval of their paired difference above zero
    (the same 95% as every interval the library prints): what it takes to leave the default rung, and
    what the words call a difference the held-out examples can show (:mod:`.explain`)."""
    return paired_difference(a, b)[1] > 1e-9


def choose_winner(scored: list[Candidate], held_out: int = 0) -> Decision:
    """The :class:`Decision` over the scored candidates (see the module docstring).

    A lead of exactly one example out of n is one standard error, 1/n, so it does not count."""
    average = next((c for c in scored if c.kind == "average"), None)
    decision = _choose_single(scored, held_out)
    if average is None:
        return decision
    members = [c for c in scored if c.name in average.options["members"]]
    if keeps_average(average, members, decision.winner):
        return dataclasses.replace(decision, winner=average, rule=AVERAGED, negative_transfer=False)
    return decision


def _choose_single(scored: list[Candidate], held_out: int) -> Decision:
    """The choice among the single models: the default rung, a departure from it, or the baseline."""
    transfer = [c for c in scored if c.kind == "transfer"]
    base = next((c for c in scored if c.kind == "baseline"), None)
    best = max(transfer, key=rank_key) if transfer else None
    default = settled_default(transfer)
    decide = lambda winner, rule, negative=False: Decision(winner, rule, best, base, default, negative, held_out)
    if best is None:
        return decide(base, NO_TRANSFER_CANDIDATE, negative=base is not None)
    if default is not None:
        kept = decide(best, DEPARTED_FROM_DEFAULT) if shown_better(best, default) else decide(default, DEFAULT_KEPT)
        # the baseline beats every transfer candidate and, like any candidate, leaves the kept model only
        # on a lead the held-out examples show
        negative = base is not None and base.mean > best.mean and shown_better(base, kept.winner)
        if not negative:
            return kept
        return dataclasses.replace(decide(base, NEGATIVE_TRANSFER, negative=True), displaced=kept.winner)
    if base and base.mean >= best.mean:
        return decide(base, NEGATIVE_TRANSFER, negative=True)
    close = [c for c in transfer if best.mean - c.mean <= paired_standard_error(best, c) + 1e-9 or c is best]
    chosen = min(close, key=lambda c: (c.seconds, -c.mean))
    if base and base.mean >= chosen.mean:
        chosen = best
    return decide(chosen, CHEAPEST_WITHIN_ONE_SE)
