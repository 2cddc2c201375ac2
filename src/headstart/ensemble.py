"""A model that averages the class probabilities of its members (the planner's averaged candidate).

``p(x) = mean_m softmax(logits_m(x))`` over the members, each a fitted model of its own kind (a
:class:`~headstart.model.TransferModel` or a no-transfer baseline). ``predict_logits`` returns
``log p(x)``, ``(n, n_classes)``: log-probabilities are logits whose softmax is ``p`` itself, so the
estimator's ``predict_proba`` gives the average unchanged. In a run folder each member is a run
folder of its own, ``member-<i>/`` (written and read by :mod:`headstart.runs`).
"""

from __future__ import annotations

import numpy as np


def member_folder(index: int) -> str:
    return f"member-{index}"


class AveragedModel:
    kind = "average"  # the run folder's model_kind

    def __init__(self, members: list):
        if len(members) < 2:
            raise ValueError(f"an average needs at least two member models, got {len(members)}")
        self.members = list(members)

    def predict_logits(self, items, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        total = None
        for member in self.members:
            logits = np.asarray(member.predict_logits(items, batch_size=batch_size, progress=progress), dtype=np.float64)
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities = shifted / shifted.sum(axis=1, keepdims=True)
            total = probabilities if total is None else total + probabilities
        return np.log(np.clip(total / len(self.members), 1e-12, None)).astype(np.float32)

    def to(self, device):
        """Move the members that run on a device (the torch ones); baselines run on numpy."""
        self.members = [member.to(device) if hasattr(member, "to") else member for member in self.members]
        return self

    def config_fields(self) -> dict:
        """What config.json records to rebuild the average: how many ``member-<i>/`` folders to read."""
        return {"members": len(self.members)}

    def save(self, folder) -> None:
        """Nothing of its own to write: the average is its members, each saved as a run folder."""
