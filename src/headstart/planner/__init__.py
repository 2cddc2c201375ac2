"""The planner behind ``strategy="auto"``: rank, try the strategy ladder, keep the best, and say why.

1. Rank the candidate backbones (every installed zoo model of the data's modality, or the one
   named) with LogME on every layer group, from one cached forward pass each over a stratified
   subsample; keep the best two (on tiny data, zoo models of one source benchmark in the order of
   their published scores), and read a suggested freeze depth off the per-layer scores
   (:mod:`.ladder`).
2. Score the ladder's candidates on held-out data: on tiny data by stratified cross-validation,
   every labeled example held out once; otherwise on the fit's own validation split, the one every
   fixed strategy holds out, so that a fine-tuned winner's scoring fit is already its final fit
   (:mod:`.run`). A rung the remaining budget cannot pay for is skipped and recorded as such.
3. Choose (:mod:`.decision`): the ladder's default rung unless another is shown better with a 95%
   paired interval; the no-transfer baseline if it beats that choice on the same terms (negative
   transfer). :mod:`.explain` puts the decision into words for ``plan_``, the log and the report.
4. Keep the winner as scored, or refit it on all labeled data.

Each rule's evidence is in docs/benchmarks.md (planner section).
"""

from .candidates import Candidate, paired_standard_error, settled_default
from .decision import Decision, choose_winner
from .explain import explain
from .ladder import (PLENTIFUL_PER_CLASS, TINY_FOLDS, TINY_PER_CLASS, build_ladder, default_rungs, planner_splits)
from .run import PlanOutcome, drop_losers, fit_candidate, plan_and_fit

# What strategy="auto" accepts beyond the common options: the fine-tuning loop's, which every rung that
# trains applies (a user's label_smoothing, say); freeze, C, regularizer and adapt are the planner's to choose.
from ..strategies.base import LOOP as ACCEPTS

__all__ = ["ACCEPTS", "Candidate", "Decision", "PLENTIFUL_PER_CLASS", "PlanOutcome", "TINY_FOLDS", "TINY_PER_CLASS",
           "build_ladder", "choose_winner", "default_rungs", "drop_losers", "explain", "fit_candidate", "paired_standard_error",
           "plan_and_fit", "planner_splits", "settled_default"]
