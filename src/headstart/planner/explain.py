"""Words for a :class:`~.decision.Decision`: a reason per scored candidate and the verdict on transfer.

Nothing here decides anything: each sentence follows from the rule the decision recorded and the
candidate's part in it (the winner, the best transfer candidate, the other default rung, the rest).
"""

from __future__ import annotations

from ..intervals import accuracy_text
from .candidates import Candidate, paired_standard_error
from .decision import AVERAGED, CHEAPEST_WITHIN_ONE_SE, DEFAULT_KEPT, DEPARTED_FROM_DEFAULT, DEPARTURE_Z, Decision


def explain(decision: Decision, scored: list[Candidate]) -> tuple[str, dict[str, str]]:
    """``(verdict, {candidate name: why it won or lost})`` for the scored candidates."""
    reasons = {c.name: _reason(c, decision) for c in scored}
    return _verdict(decision), reasons


def _shown(candidate: Candidate | None, decision: Decision) -> str:
    return accuracy_text(candidate.mean, decision.held_out) if candidate is not None else "n/a"


def _lead(a: Candidate, b: Candidate) -> str:
    """``a``'s lead over ``b``, with the 95% interval of the paired difference."""
    diff, spread = a.mean - b.mean, DEPARTURE_Z * paired_standard_error(a, b)
    return f"{100 * diff:+.1f} points, 95% interval [{100 * (diff - spread):+.1f}, {100 * (diff + spread):+.1f}]"


def _reason(c: Candidate, decision: Decision) -> str:
    if c is decision.winner:
        return _winner_reason(c, decision)
    shown = lambda x: _shown(x, decision)
    winner, best, default = decision.winner, decision.best_transfer, decision.default
    if c.kind == "average":
        return (f"lost: {shown(c)}; an average is kept only when it beats both its members and leads the choice, "
                f"{winner.name} {shown(winner)}, by more than one standard error ({paired_standard_error(c, winner):.3f})")
    if c is best and decision.rule == DEFAULT_KEPT:
        if c.mean == winner.mean:
            return f"lost: ties the ladder's default {winner.name} at {shown(c)}; a tie keeps the default"
        return (f"lost: best held-out accuracy {shown(c)}, but its lead over the ladder's default {winner.name} "
                f"({_lead(c, winner)}) includes zero")
    if c is best and decision.rule == CHEAPEST_WITHIN_ONE_SE:
        return (f"lost: best held-out accuracy {shown(c)}, but not by more than one standard error "
                f"({paired_standard_error(c, winner):.3f}) over the cheaper {winner.name} {shown(winner)}")
    if c.default and default is not None and c is not default:
        return (f"lost: one of the ladder's defaults at this data size, behind the other, {default.name}, "
                f"on the held-out examples ({shown(c)} against {shown(default)})")
    return f"lost: {shown(c)} vs the winner's {shown(winner)}" + (" (no-transfer baseline)" if c.kind == "baseline" else "")


def _winner_reason(c: Candidate, decision: Decision) -> str:
    shown = lambda x: _shown(x, decision)
    best, default = decision.best_transfer, decision.default
    if decision.rule == AVERAGED:
        return (f"won: held-out accuracy {shown(c)}, ahead of both members, the no-transfer baseline "
                f"{decision.baseline.name} {shown(decision.baseline)} and {best.name} {shown(best)} ({_lead(c, best)} "
                f"over the latter)")
    if decision.rule == DEFAULT_KEPT and c is not best:
        return (f"won: the ladder's default at this data size, held-out accuracy {shown(c)}; " + (
            f"{best.name} ties it" if best.mean == c.mean else
            f"the best, {best.name} {shown(best)}, leads it by {_lead(best, c)}: not shown to be better"))
    if decision.rule == DEPARTED_FROM_DEFAULT:
        return (f"won: best held-out accuracy {shown(c)}, ahead of the ladder's default {default.name} "
                f"{shown(default)} by {_lead(c, default)}")
    if decision.rule == CHEAPEST_WITHIN_ONE_SE and c is not best:
        return (f"won: held-out accuracy {shown(c)}, within one standard error of the best ({best.name}, "
                f"{shown(best)}) and cheaper ({c.seconds:.0f} s against {best.seconds:.0f} s)")
    return f"won: best held-out accuracy {shown(c)}" + (f" (± {c.std:.3f} across splits)" if c.std else "")


def _verdict(decision: Decision) -> str:
    shown = lambda x: _shown(x, decision)
    base, best, winner = decision.baseline, decision.best_transfer, decision.winner
    if decision.rule == AVERAGED:
        return (f"transfer helped alongside the baseline: averaging the probabilities of {base.name} {shown(base)} "
                f"and {best.name} {shown(best)} scored {shown(winner)}; keeping the average of the two")
    if decision.negative_transfer:
        relation = "beats" if best is None or base.mean > best.mean else "matches"
        return (f"negative transfer: the no-transfer baseline ({base.name}, {shown(base)}) {relation} the "
                f"best transfer candidate ({best.name if best else 'none'}, {shown(best)}); keeping the baseline")
    if base and base.mean == best.mean:
        return (f"no difference shown: the no-transfer baseline {base.name} ties the best transfer candidate "
                f"{best.name} at {shown(base)}; keeping {winner.name}, the ladder's default at this data size")
    if base:
        return (f"transfer helped: {best.name} {shown(best)} vs the no-transfer baseline {base.name} {shown(base)} "
                f"({100 * (best.mean - base.mean):+.1f} points)")
    return "no baseline exists for this modality; transfer was not compared"
