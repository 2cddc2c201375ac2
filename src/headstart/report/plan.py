"""The planner's record (``plan.json``) as the report shows it, and its verdict in plain words.

Plans saved by older versions lack fields added since (a second default, the held-out prediction
count, whether the winner was refit, the per-example hits); :func:`summarize_plan` gives each its
meaning for those plans, so the page reads any run folder the same way.

The plain verdict tells the planner's story (:mod:`headstart.planner.explain`) in the same order:
the model kept, with its held-out accuracy and time; against the no-transfer baseline; why it was
kept when another scored higher; and what its time bought over a cheaper candidate.
"""

from __future__ import annotations

from ..intervals import accuracy_text
from ..metrics import number_or_none


def _candidates(plan: dict) -> list[dict]:
    held_out = plan.get("held_out_predictions") or 0
    return [{
        "name": c["name"], "kind": c["kind"], "strategy": c["strategy"], "backbone": c.get("backbone"),
        "scores": list(c.get("scores") or []), "mean": number_or_none(c.get("mean")),
        "score_text": _score_text(c, held_out),
        "std": number_or_none(c.get("std")), "seconds": number_or_none(c.get("seconds")), "status": c.get("status"),
        "reason": c.get("reason", ""), "chosen": c["name"] == plan.get("winner"), "default": bool(c.get("default")),
        "_correct": list(c.get("correct") or []),  # per held-out example, for the paired comparisons; not saved again
    } for c in plan.get("candidates", [])]


def _score_text(candidate: dict, held_out: int) -> str:
    """The held-out accuracy with its 95% interval (``—`` when the candidate was not scored)."""
    mean = number_or_none(candidate.get("mean"))
    if candidate.get("status") != "scored" or mean is None:
        return "—"
    return accuracy_text(mean, len(candidate.get("correct") or []) or held_out)


def summarize_plan(plan: dict) -> tuple[dict, list[dict]]:
    """``(plan, ranking)`` of the report from a run's ``plan_``, whatever version saved it."""
    candidates = _candidates(plan)
    winner = next((c for c in candidates if c["chosen"]), None)
    defaults = [c["name"] for c in candidates if c["default"]]
    summary = {
        "winner": plan.get("winner"), "winner_kind": winner["kind"] if winner else None,
        "winner_score": winner["score_text"] if winner else None,
        "winner_seconds": winner["seconds"] if winner else None,
        "chosen_vs_baseline": _chosen_vs_baseline(winner, candidates),
        # the ladder's default rung that counted, kept unless held-out data clearly disagree (None when it was
        # not scored, e.g. skipped for the budget); plans saved before there could be two defaults name none, and had one
        "default": plan["default"] if "default" in plan else next(iter(defaults), None),
        "defaults": defaults,
        "baseline": plan.get("baseline"), "negative_transfer": bool(plan.get("negative_transfer")),
        "verdict": plan.get("verdict", ""), "plain_verdict": plain_verdict(plan, candidates),
        "headline": verdict_headline(plan),
        "candidates": candidates, "splits": plan.get("splits"), "split_kind": plan.get("split_kind"),
        "split_sizes": plan.get("split_sizes"), "budget_seconds": number_or_none(plan.get("budget_seconds")),
        "held_out_predictions": plan.get("held_out_predictions"),  # absent from plans saved before the 3 folds
        "spent_seconds": number_or_none(plan.get("spent_seconds")), "kept_backbones": plan.get("kept_backbones", []),
        "logme_order": plan.get("logme_order", []),  # absent from plans saved before published scores counted
        "freeze_suggestions": plan.get("freeze_suggestions", {}),
        "winner_refit": plan.get("winner_refit", True),  # plans saved before it existed always refit
    }
    ranking = [{"backbone": r["backbone"], "layer": r["layer"], "layer_index": r["layer_index"],
                "score_name": r.get("score_name", "logme"), "score": number_or_none(r["score"])}
               for r in plan.get("ranking", [])]
    return summary, ranking


def _chosen_vs_baseline(winner: dict | None, candidates: list[dict]) -> dict | None:
    """The chosen model against the no-transfer baseline as the planner compared them: trained on the same
    rows, scored on the same held-out examples; None when the baseline was chosen, or not scored."""
    baseline = next((c for c in candidates if c["kind"] == "baseline" and c["status"] == "scored"), None)
    if winner is None or baseline is None or winner is baseline or winner["mean"] is None:
        return None
    paired = _paired(winner, baseline)
    if paired is None:
        return None
    gain, low, high = paired
    return {"baseline": baseline["name"], "n": len(winner["_correct"]), "chosen_minus_baseline": gain / 100,
            "low": low / 100, "high": high / 100, "text": f"{gain:+.1f} points [{low:+.1f}, {high:+.1f}]",
            "meaning": ("the held-out examples cannot tell them apart" if low <= 1e-7 and high >= -1e-7 else
                        "the chosen model is better" if low > 0 else "the baseline is better")}


def verdict_headline(plan: dict) -> tuple[str, str]:
    """``(css class, bold words)`` that open the verdict: negative, no difference, positive, or no baseline."""
    verdict = str(plan.get("verdict", ""))
    if plan.get("negative_transfer"):
        return "negative", "Negative transfer."
    if not plan.get("baseline"):
        return "neutral", "No baseline."
    if verdict.startswith("no difference shown"):
        return "neutral", "No difference shown."
    if verdict.startswith("the no-transfer baseline did better"):
        return "negative", "The baseline did better than the kept model."
    return "positive", "Transfer helped."


# --------------------------------------------------------------------------- the verdict in plain words


def plain_verdict(plan: dict, candidates: list[dict]) -> str:
    """The planner's verdict in plain sentences, after the bold words of :func:`verdict_headline`: the
    same chosen model, its score and time, the baseline, and what its time bought."""
    optional = {"seconds": None, "_correct": [], "default": False, "backbone": None, "scores": []}
    scored = [{**optional, **c} for c in candidates if c["status"] == "scored" and c["mean"] is not None]
    chosen = next((c for c in scored if c["name"] == plan.get("winner")), None)
    if chosen is None:
        return "The run records no scored winner."
    baseline = next((c for c in scored if c["kind"] == "baseline"), None)
    transfer = [c for c in scored if c["kind"] == "transfer"]
    best = max(transfer, key=lambda c: (c["mean"], -(c["seconds"] or 0))) if transfer else None
    sentences = [_kept_sentence(chosen), _baseline_sentence(plan, chosen, baseline, best),
                 _higher_sentence(plan, chosen, best), _tradeoff_sentence(chosen, scored, plan)]
    return " ".join(s for s in sentences if s)


def _in(candidate: dict) -> str:
    """``0.968 in 6.5 min``: a candidate's held-out accuracy and the time it took to score."""
    from ..planner.explain import seconds_text

    seconds = candidate["seconds"]
    return f"{candidate['mean']:.3f}" + (f" in {seconds_text(seconds)}" if seconds is not None else "")


def _kept_sentence(chosen: dict) -> str:
    what = {"baseline": "a simple model trained from scratch on the raw inputs, no pretrained model",
            "average": "the average of the predicted probabilities of two models"}.get(
        chosen["kind"], f"a pretrained model, {chosen['strategy']}")
    return f"The planner kept {chosen['name']} ({what}): held-out accuracy {_in(chosen)}."


def _baseline_sentence(plan: dict, chosen: dict, baseline: dict | None, best: dict | None) -> str:
    if baseline is None:
        return "There is no no-transfer baseline for this kind of data, so the run could not check whether transfer helped."
    if chosen is baseline:
        if best is None:
            return "No pretrained candidate could be scored."
        return (f"It did as well as or better than the best pretrained model ({best['name']}, {_in(best)}), so "
                f"transfer did not pay off on this data.")
    simple = f"A simple model trained from scratch on the raw inputs ({baseline['strategy']}) scored {_in(baseline)}"
    if chosen["kind"] == "average":
        return f"{simple}; averaged with {best['name']} ({_in(best)}) it beat both on the held-out examples."
    return f"{simple}; {_relation(chosen, baseline, 'the pretrained model')}."


def _paired(chosen: dict, other: dict) -> tuple[float, float, float] | None:
    """The chosen model's lead over ``other`` in points with its paired 95% interval (the planner's own,
    :func:`~headstart.planner.candidates.paired_difference`), from the per-example hits; None for plans
    saved before the hits were kept."""
    from ..planner.candidates import paired_difference

    a, b = _as_candidate(chosen), _as_candidate(other)
    if not a.correct or len(a.correct) != len(b.correct):
        return None
    gain, low, high = paired_difference(a, b)
    return 100 * gain, 100 * low, 100 * high


def _relation(chosen: dict, other: dict, chosen_words: str) -> str:
    """How the chosen model compares with ``other`` on the same held-out examples."""
    paired = _paired(chosen, other)
    if paired is None:  # a plan saved before the per-example hits were kept: no paired interval
        gain = 100 * (chosen["mean"] - other["mean"])
        return (f"{chosen_words} scored the same" if gain == 0 else
                f"{chosen_words} scored {abs(gain):.1f} percentage points {'higher' if gain > 0 else 'lower'}")
    gain, low, high = paired
    interval = f"{gain:+.1f} points, 95% interval [{low:+.1f}, {high:+.1f}]"
    if low > 1e-7:
        return f"{chosen_words} is ahead by {interval}"
    if high < -1e-7:
        return f"{chosen_words} is behind by {interval}"
    return f"the held-out examples cannot tell the two apart ({chosen_words}: {interval})"


def _higher_sentence(plan: dict, chosen: dict, best: dict | None) -> str:
    """Why the planner kept a model when a pretrained one scored higher: the rule it records."""
    if best is None or chosen["kind"] != "transfer" or best["mean"] <= chosen["mean"]:
        return ""
    if plan.get("rule") == "cheapest_within_one_se":
        rule = "no default option was scored, so the fastest candidate close to the best (within one standard error) is kept"
    else:
        option = ("the better on the held-out examples of the two options that did best in our benchmarks at this "
                  "data size" if len(plan.get("defaults") or []) > 1 else
                  "the option that did best in our benchmarks at this data size")
        rule = (f"{chosen['name']} is {option}, and it is kept unless another beats it clearly (the 95% interval of "
                f"the paired difference above zero), which the held-out examples did not show")
    return f"{best['name']} scored higher ({_in(best)}), but {rule}."


def _tradeoff_sentence(chosen: dict, scored: list[dict], plan: dict) -> str:
    """What the chosen model's extra time bought over a cheaper candidate (see :func:`cheaper_alternative`)."""
    from ..planner.explain import CANNOT_TELL, CHEAPER_BETTER, cheaper_alternative, seconds_text, times_text

    if chosen["seconds"] is None:
        return ""
    candidates = {c["name"]: _as_candidate(c) for c in scored}
    tradeoff = cheaper_alternative(candidates[chosen["name"]], list(candidates.values()))
    if tradeoff is None:
        return ""
    cheap = next(c for c in scored if c["name"] == tradeoff.cheaper.name)
    took = (f"It took {times_text(chosen['seconds'], cheap['seconds'])} the time of {cheap['name']} "
            f"({seconds_text(chosen['seconds'])} against {seconds_text(cheap['seconds'])})")
    if cheap["kind"] == "baseline" and chosen["kind"] == "transfer":  # the baseline sentence compared the accuracies
        return took + (": the extra time bought no accuracy the held-out examples can show." if
                       tradeoff.relation == CANNOT_TELL else ".")
    if tradeoff.relation == CHEAPER_BETTER:
        return f"{took}, and {cheap['name']} scored clearly higher ({cheap['mean']:.3f}); the rule above kept {chosen['name']}."
    if tradeoff.relation == CANNOT_TELL:
        return (f"{took}, and the held-out examples cannot tell their accuracies apart ({chosen['mean']:.3f} against "
                f"{cheap['mean']:.3f}): the extra time bought no accuracy they can show.")
    gain, low, high = _paired(chosen, cheap)
    return f"{took}; the extra time bought {gain:+.1f} points of held-out accuracy, 95% interval [{low:+.1f}, {high:+.1f}]."


def _as_candidate(record: dict):
    """A planner :class:`~headstart.planner.candidates.Candidate` from the report's record of one."""
    from ..planner.candidates import Candidate

    return Candidate(record["name"], record["kind"], record["strategy"], record.get("backbone"),
                     correct=list(record.get("_correct") or []), seconds=record["seconds"] or 0.0,
                     status=record["status"], default=record["default"],
                     scores=list(record.get("scores") or []) or [record["mean"]])
