"""The planner's record (``plan.json``) as the report shows it, and its verdict in plain words.

Plans saved by older versions lack fields added since (a second default, the held-out prediction
count, whether the winner was refit); :func:`summarize_plan` gives each its meaning for those plans,
so the page reads any run folder the same way.
"""

from __future__ import annotations

from ..metrics import number_or_none


def _candidates(plan: dict) -> list[dict]:
    return [{
        "name": c["name"], "kind": c["kind"], "strategy": c["strategy"], "backbone": c.get("backbone"),
        "scores": list(c.get("scores") or []), "mean": number_or_none(c.get("mean")),
        "std": number_or_none(c.get("std")), "seconds": number_or_none(c.get("seconds")), "status": c.get("status"),
        "reason": c.get("reason", ""), "chosen": c["name"] == plan.get("winner"), "default": bool(c.get("default")),
    } for c in plan.get("candidates", [])]


def summarize_plan(plan: dict) -> tuple[dict, list[dict]]:
    """``(plan, ranking)`` of the report from a run's ``plan_``, whatever version saved it."""
    candidates = _candidates(plan)
    winner = next((c for c in candidates if c["chosen"]), None)
    defaults = [c["name"] for c in candidates if c["default"]]
    summary = {
        "winner": plan.get("winner"), "winner_kind": winner["kind"] if winner else None,
        # the ladder's default rung that counted, kept unless held-out data clearly disagree; plans saved
        # before there could be two defaults name none, and had one
        "default": plan.get("default") or next(iter(defaults), None),
        "defaults": defaults,
        "baseline": plan.get("baseline"), "negative_transfer": bool(plan.get("negative_transfer")),
        "verdict": plan.get("verdict", ""), "plain_verdict": plain_verdict(plan, candidates),
        "headline": verdict_headline(plan),
        "candidates": candidates, "splits": plan.get("splits"), "split_kind": plan.get("split_kind"),
        "split_sizes": plan.get("split_sizes"), "budget_seconds": number_or_none(plan.get("budget_seconds")),
        "held_out_predictions": plan.get("held_out_predictions"),  # absent from plans saved before the 3 folds
        "spent_seconds": number_or_none(plan.get("spent_seconds")), "kept_backbones": plan.get("kept_backbones", []),
        "freeze_suggestions": plan.get("freeze_suggestions", {}),
        "winner_refit": plan.get("winner_refit", True),  # plans saved before it existed always refit
    }
    ranking = [{"backbone": r["backbone"], "layer": r["layer"], "layer_index": r["layer_index"],
                "score_name": r.get("score_name", "logme"), "score": number_or_none(r["score"])}
               for r in plan.get("ranking", [])]
    return summary, ranking


def verdict_headline(plan: dict) -> tuple[str, str]:
    """``(css class, bold words)`` that open the verdict: negative, a tie, positive, or no baseline."""
    if plan.get("negative_transfer"):
        return "negative", "Negative transfer."
    if not plan.get("baseline"):
        return "neutral", "No baseline."
    if str(plan.get("verdict", "")).startswith("no difference shown"):
        return "neutral", "No difference shown."
    return "positive", "Transfer helped."


def _kept_note(plan: dict, winner: dict, best: dict) -> str:
    """Why the planner kept a default rung that did not score best, or nothing when it kept the best."""
    if winner is best:
        return ""
    option = ("the better on the held-out examples of the two options that did best in our benchmarks at this data "
              "size" if len(plan.get("defaults") or []) > 1 else "the option that did best in our benchmarks at this "
              "data size")
    return (f" The planner kept {winner['name']} ({winner['mean']:.3f}): {option}, which the held-out examples did not "
            f"show to be worse.")


def plain_verdict(plan: dict, candidates: list[dict]) -> str:
    """The negative-transfer verdict in plain sentences, after the bold words of :func:`verdict_headline`."""
    baseline = next((c for c in candidates if c["kind"] == "baseline" and c["status"] == "scored"), None)
    transfer = [c for c in candidates if c["kind"] == "transfer" and c["status"] == "scored"]
    best = max(transfer, key=lambda c: c["mean"]) if transfer else None
    if baseline is None:
        return ("There is no no-transfer baseline for this kind of data, so the run could not check whether "
                "transfer helped.")
    if plan.get("negative_transfer"):
        if best is None:
            return (f"No transfer candidate could be scored, so the simple model trained from scratch "
                    f"({baseline['strategy']}) was kept.")
        return (f"A simple model trained from scratch on the raw inputs "
                f"({baseline['strategy']}, {baseline['mean']:.3f}) did as well as or better than the best pretrained "
                f"model ({best['name']}, {best['mean']:.3f}), so the simple model was kept.")
    kept = _kept_note(plan, next((c for c in transfer if c["name"] == plan.get("winner")), best), best)
    average = next((c for c in candidates if c["kind"] == "average" and c["name"] == plan.get("winner")), None)
    if average is not None:
        kept = (f" The planner kept the average of the two models' predicted probabilities ({average['mean']:.3f}), "
                f"which beat both of them on the held-out examples.")
    if best["mean"] == baseline["mean"]:
        return (f"The best pretrained model ({best['name']}) and a simple model trained from "
                f"scratch ({baseline['strategy']}) scored the same held-out accuracy ({best['mean']:.3f}); with this "
                f"few examples that says nothing either way.{kept}")
    gain = 100 * (best["mean"] - baseline["mean"])
    return (f"The best pretrained model ({best['name']}, {best['mean']:.3f}) beat a simple model "
            f"trained from scratch ({baseline['strategy']}, {baseline['mean']:.3f}) by {gain:.1f} percentage points "
            f"of held-out accuracy.{kept}")
