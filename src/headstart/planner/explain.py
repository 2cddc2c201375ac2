"""Words for a :class:`~.decision.Decision`: a reason per scored candidate and the verdict on transfer.

Nothing here decides anything: each sentence follows from the rule the decision recorded and the
candidate's part in it (the winner, the best transfer candidate, the other default rung, the rest).

Three rules keep the story honest and the same everywhere (``plan_``, the log, the fit summary and the
report all show these words):

* every candidate is shown with its held-out accuracy *and* its time, since the choice trades one for
  the other;
* the verdict names the model that was kept, and why it was kept when another scored higher;
* a candidate is said to have "lost" only when it scored below the chosen one; one that scored as
  high or higher was "not chosen", with the rule that kept the other (the default rung stays unless
  clearly beaten: docs/benchmarks.md, planner section).

When a cheaper candidate cannot be told apart from the chosen one on the held-out examples, the verdict
says what the extra time bought: nothing those examples can show (:func:`cheaper_alternative`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..intervals import accuracy_text
from .candidates import Candidate, paired_difference, paired_standard_error, rank_key
from .decision import (AVERAGED, CHEAPEST_WITHIN_ONE_SE, DEFAULT_KEPT, DEPARTED_FROM_DEFAULT, NEGATIVE_TRANSFER,
                       Decision, shown_better)

CANNOT_TELL = "cannot_tell"  # neither is shown better: the 95% interval of the paired difference includes zero
CHOSEN_BETTER = "chosen_better"
CHEAPER_BETTER = "cheaper_better"


@dataclass(frozen=True)
class Tradeoff:
    """The chosen candidate against one that took less time, and what the held-out examples say of the two."""

    chosen: Candidate
    cheaper: Candidate
    relation: str  # CANNOT_TELL, CHOSEN_BETTER or CHEAPER_BETTER


def explain(decision: Decision, scored: list[Candidate]) -> tuple[str, dict[str, str]]:
    """``(verdict, {candidate name: why it was chosen or not})`` for the scored candidates."""
    reasons = {c.name: _reason(c, decision) for c in scored}
    return _verdict(decision, scored), reasons


def cheaper_alternative(chosen: Candidate, scored: list[Candidate]) -> Tradeoff | None:
    """The cheaper candidate the user most needs to hear about, or None when none took less time.

    First a cheaper one shown better than the chosen one (the rule kept the chosen anyway); else the
    cheapest that the held-out examples cannot tell from it (the extra time bought nothing they can
    show); else the best of the cheaper ones (what the extra time bought)."""
    cheaper = [c for c in scored if c is not chosen and c.seconds < chosen.seconds
               and len(c.correct) == len(chosen.correct) > 0]
    better = [c for c in cheaper if shown_better(c, chosen)]
    if better:
        return Tradeoff(chosen, max(better, key=rank_key), CHEAPER_BETTER)
    alike = [c for c in cheaper if not shown_better(chosen, c)]
    if alike:
        return Tradeoff(chosen, min(alike, key=lambda c: (c.seconds, -c.mean)), CANNOT_TELL)
    return Tradeoff(chosen, max(cheaper, key=rank_key), CHOSEN_BETTER) if cheaper else None


def seconds_text(seconds: float) -> str:
    """``2.4 s`` or ``6.5 min``, as the report prints times."""
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def times_text(slow: float, fast: float) -> str:
    """How many times as long ``slow`` took as ``fast``: ``160×``, ``1.4×``."""
    if fast <= 0:
        return "more than"
    ratio = slow / fast
    return f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.1f}×"


def _held_out(decision: Decision, candidate: Candidate) -> int:
    return decision.held_out or len(candidate.correct)


def _shown(candidate: Candidate | None, decision: Decision) -> str:
    return accuracy_text(candidate.mean, _held_out(decision, candidate)) if candidate is not None else "n/a"


def _scored_in(candidate: Candidate | None, decision: Decision) -> str:
    """``0.968 [0.833, 0.994] in 6.5 min``: the held-out accuracy and the time it took to score."""
    if candidate is None:
        return "n/a"
    return f"{_shown(candidate, decision)} in {seconds_text(candidate.seconds)}"


def _lead(a: Candidate, b: Candidate) -> str:
    """``a``'s lead over ``b``, with the 95% interval of the paired difference (the one decisions use)."""
    diff, low, high = paired_difference(a, b)
    return f"{100 * diff:+.1f} points, 95% interval [{100 * low:+.1f}, {100 * high:+.1f}]"


def _compared(c: Candidate, winner: Candidate) -> str:
    return "above" if c.mean > winner.mean else "level with"


# --------------------------------------------------------------------------- one reason per candidate


def _reason(c: Candidate, decision: Decision) -> str:
    if c is decision.winner:
        return _winner_reason(c, decision)
    winner, best, default = decision.winner, decision.best_transfer, decision.default
    if c.kind == "average":
        return _average_reason(c, decision)
    if c is best and decision.rule in (DEFAULT_KEPT, CHEAPEST_WITHIN_ONE_SE):
        return _best_not_chosen(c, decision)
    if c.default and default is not None and c is not default:
        verb, place = ("lost", "behind") if c.mean < default.mean else ("not chosen", "level with")
        return (f"{verb}: one of the ladder's defaults at this data size, {place} the other, {default.name}, on the "
                f"held-out examples ({_scored_in(c, decision)} against {_scored_in(default, decision)})")
    if c.mean < winner.mean:
        what = "the no-transfer baseline, " if c.kind == "baseline" else ""
        return f"lost: {what}{_scored_in(c, decision)}, against the chosen {winner.name}'s {_scored_in(winner, decision)}"
    return (f"not chosen: {'the no-transfer baseline, ' if c.kind == 'baseline' else ''}{_scored_in(c, decision)}, "
            f"{_compared(c, winner)} the chosen {winner.name} ({_scored_in(winner, decision)}); {_rule_for(c, decision)}")


def _average_reason(c: Candidate, decision: Decision) -> str:
    winner = decision.winner
    verb = "lost" if c.mean < winner.mean else "not chosen"
    return (f"{verb}: {_scored_in(c, decision)} (its members' time, no extra fit); an average is kept only when it "
            f"beats both its members and leads the choice, {winner.name} {_scored_in(winner, decision)}, by more "
            f"than one standard error ({paired_standard_error(c, winner):.3f})")


def _best_not_chosen(c: Candidate, decision: Decision) -> str:
    """The best transfer candidate when the rule kept another: the default rung, or a cheaper one close to it."""
    winner = decision.winner
    if decision.rule == CHEAPEST_WITHIN_ONE_SE:
        return (f"not chosen: best held-out accuracy {_scored_in(c, decision)}, but not by more than one standard "
                f"error ({paired_standard_error(c, winner):.3f}) over the cheaper {winner.name} "
                f"({_scored_in(winner, decision)})")
    if c.mean == winner.mean:
        return (f"not chosen: ties the ladder's default {winner.name} at {_shown(c, decision)} "
                f"({seconds_text(c.seconds)} against {seconds_text(winner.seconds)}); a tie keeps the default")
    return (f"not chosen: best held-out accuracy {_scored_in(c, decision)}, but its lead over the ladder's default "
            f"{winner.name} ({_scored_in(winner, decision)}) is {_lead(c, winner)}, which includes zero: the default "
            f"is kept unless another beats it with that interval above zero")


def _rule_for(c: Candidate, decision: Decision) -> str:
    """Why ``c``, which scored as high as the chosen candidate or higher, was not chosen."""
    winner, best = decision.winner, decision.best_transfer
    if c.kind == "baseline":
        if decision.default is None:
            return (f"the baseline is kept only when it matches or beats every transfer candidate, and {best.name} "
                    f"scored {_shown(best, decision)}")
        return (f"the baseline replaces the kept transfer model only when it beats every transfer candidate and "
                f"leads the kept one with the 95% interval of the paired difference above zero, and this lead is "
                f"{_lead(c, winner)}")
    if decision.rule == DEFAULT_KEPT:
        return (f"the ladder's default is kept unless another beats it with the 95% interval of the paired difference "
                f"above zero, and this lead is {_lead(c, winner)}")
    if decision.rule == CHEAPEST_WITHIN_ONE_SE:
        return f"it is within one standard error of the best, and {winner.name} took less time"
    if decision.rule == NEGATIVE_TRANSFER:
        return "the no-transfer baseline is kept when it matches the best transfer candidate and no default rung was scored"
    return f"it ties {winner.name}, which took less time"


def _winner_reason(c: Candidate, decision: Decision) -> str:
    best, default = decision.best_transfer, decision.default
    if decision.rule == AVERAGED:
        return (f"won: held-out accuracy {_scored_in(c, decision)} (its members' time, no extra fit), ahead of both "
                f"members, the no-transfer baseline {decision.baseline.name} {_scored_in(decision.baseline, decision)} "
                f"and {best.name} {_scored_in(best, decision)} ({_lead(c, best)} over the latter)")
    if decision.rule == DEFAULT_KEPT and c is not best:
        return (f"won: the ladder's default at this data size, held-out accuracy {_scored_in(c, decision)}; " + (
            f"{best.name} ties it" if best.mean == c.mean else
            f"the best, {best.name} {_scored_in(best, decision)}, leads it by {_lead(best, c)}: not shown to be better"))
    if decision.rule == DEPARTED_FROM_DEFAULT:
        return (f"won: best held-out accuracy {_scored_in(c, decision)}, ahead of the ladder's default {default.name} "
                f"{_scored_in(default, decision)} by {_lead(c, default)}")
    if decision.rule == CHEAPEST_WITHIN_ONE_SE and c is not best:
        return (f"won: held-out accuracy {_scored_in(c, decision)}, within one standard error of the best "
                f"({best.name}, {_scored_in(best, decision)}) and cheaper")
    default_note = "; the ladder's default at this data size" if decision.rule == DEFAULT_KEPT else ""
    return (f"won: best held-out accuracy {_scored_in(c, decision)}" + (f" (± {c.std:.3f} across splits)" if c.std else "")
            + default_note)


# --------------------------------------------------------------------------- the verdict


def _verdict(decision: Decision, scored: list[Candidate]) -> str:
    """What was kept, against the no-transfer baseline, and what its time bought over a cheaper candidate."""
    tradeoff = cheaper_alternative(decision.winner, scored)
    note = _tradeoff_words(tradeoff, decision) if tradeoff else ""
    return _transfer_verdict(decision) + (f"; {note}" if note else "")


def _compared_with_baseline(decision: Decision) -> bool:
    """Whether the verdict already sets the kept transfer model against the baseline, interval and all."""
    base, best = decision.baseline, decision.best_transfer
    return (base is not None and best is not None and not decision.negative_transfer and decision.rule != AVERAGED
            and base.mean != best.mean)


def _transfer_verdict(decision: Decision) -> str:
    base, best, winner = decision.baseline, decision.best_transfer, decision.winner
    kept = f"keeping {winner.name} ({_scored_in(winner, decision)}){_why_kept(decision)}"
    if decision.rule == AVERAGED:
        return (f"transfer helped alongside the baseline: averaging the probabilities of {base.name} "
                f"{_scored_in(base, decision)} and {best.name} {_scored_in(best, decision)} scored "
                f"{_shown(winner, decision)}; keeping the average of the two, {winner.name}")
    if decision.negative_transfer:
        rival = decision.displaced or best
        if rival is None or decision.default is None:  # without a default, matching the best is enough
            relation = "beats" if rival is None or base.mean > rival.mean else "matches"
            against = f"{relation} the best transfer candidate ({rival.name if rival else 'none'}, {_shown(rival, decision)})"
        elif rival is best:
            against = f"beats every transfer candidate, the best ({best.name}, {_shown(best, decision)}) by {_lead(base, best)}"
        else:
            against = (f"beats every transfer candidate (the best, {best.name}, {_shown(best, decision)}) and leads the "
                       f"one the rules would keep, {rival.name} ({_shown(rival, decision)}), by {_lead(base, rival)}")
        return (f"negative transfer: the no-transfer baseline ({base.name}, {_shown(base, decision)}) {against}; "
                f"keeping the baseline, {base.name}, scored in {seconds_text(base.seconds)}"
                + (f" against {seconds_text(rival.seconds)}" if rival else ""))
    if base is None:
        return f"no baseline exists for this modality, so transfer was not compared; {kept}"
    if base.mean == best.mean:
        return (f"no difference shown: the no-transfer baseline {base.name} ties the best transfer candidate "
                f"{best.name} at {_shown(base, decision)}; {kept}")
    against = f"the no-transfer baseline {base.name} ({_scored_in(base, decision)})"
    if shown_better(winner, base):
        return f"transfer helped: {kept}, ahead of {against} by {_lead(winner, base)}"
    if shown_better(base, winner):
        return (f"the no-transfer baseline did better than the kept model: {kept}; {against} leads it by "
                f"{_lead(base, winner)}, but the baseline is kept only when it beats every transfer candidate")
    return (f"no difference shown: {kept}; {against} cannot be told apart from it on these "
            f"{_held_out(decision, winner)} held-out examples ({winner.name} {_lead(winner, base)})"
            + ("; the baseline replaces the kept model only with a lead whose interval lies above zero"
               if base.mean > winner.mean else ""))


def _why_kept(decision: Decision) -> str:
    """After the kept transfer model's name: the rule that kept it, when that is not plainly the best score."""
    winner, best, default = decision.winner, decision.best_transfer, decision.default
    if decision.rule == DEFAULT_KEPT:
        if best is winner or best.mean == winner.mean:
            return ", the ladder's default at this data size"
        return (f", the ladder's default at this data size, kept unless clearly beaten: {best.name} "
                f"({_scored_in(best, decision)}) leads it by {_lead(best, winner)}, an interval that includes zero")
    if decision.rule == DEPARTED_FROM_DEFAULT:
        return f", which beat the ladder's default {default.name} ({_scored_in(default, decision)}) by {_lead(winner, default)}"
    if decision.rule == CHEAPEST_WITHIN_ONE_SE and winner is not best:
        return f", the cheapest within one standard error of the best, {best.name} ({_scored_in(best, decision)})"
    return ""


def _tradeoff_words(tradeoff: Tradeoff, decision: Decision) -> str:
    chosen, cheaper = tradeoff.chosen, tradeoff.cheaper
    took = (f"{chosen.name} took {times_text(chosen.seconds, cheaper.seconds)} the time of {cheaper.name} "
            f"({seconds_text(chosen.seconds)} against {seconds_text(cheaper.seconds)}")
    if cheaper is decision.baseline and _compared_with_baseline(decision):  # the accuracies are compared already
        return took + (") for no difference those examples can show" if tradeoff.relation == CANNOT_TELL else ")")
    if tradeoff.relation == CHEAPER_BETTER:
        return (f"{cheaper.name} scored higher in less time ({_scored_in(cheaper, decision)}; {_lead(cheaper, chosen)}) "
                f"and was not chosen by the rule above")
    if tradeoff.relation == CHOSEN_BETTER:
        return f"{took}) and that bought {_lead(chosen, cheaper)}"
    return (f"{took}) for {_lead(chosen, cheaper)}: no difference these "
            f"{_held_out(decision, chosen)} held-out examples can show, so the extra time bought nothing measurable")
