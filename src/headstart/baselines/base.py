"""What a no-transfer baseline is: a classic model fit on the raw inputs, saved without pickle.

Baselines answer "did transfer help at all?". They are not torch models: each keeps its learned
state as JSON (settings, vocabularies) plus arrays (safetensors), and predicts logits like a
:class:`~headstart.model.TransferModel` does, so the estimator and the planner treat both alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from ..atomic import read_json_object, write_atomic, write_text_atomic
from ..errors import RunFolderError
from ..heads import fit_head

STATE_FILE, ARRAYS_FILE = "baseline.json", "baseline.safetensors"


class Baseline:
    name: str = ""
    modality: str = ""
    kind = "baseline"  # the run folder's model_kind

    # -- subclasses -----------------------------------------------------------------
    def fit_transform(self, items) -> np.ndarray:
        raise NotImplementedError

    def transform(self, items) -> np.ndarray:
        raise NotImplementedError

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        raise NotImplementedError

    def set_state(self, settings: dict, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------
    def fit(self, train_items, train_y, val_items, val_y, n_classes: int, refit_on_validation: bool = True,
            random_state: int = 0) -> dict:
        """Fit the head on train + validation, C chosen by stratified cross-validation over those rows;
        return the C search's record.

        ``refit_on_validation=False`` fits (and cross-validates) the head on the training rows alone, so
        the planner can score it on the validation rows; the features (e.g. TF-IDF's vocabulary) are
        learned from both either way, as no labels enter them.
        """
        features = self.fit_transform(list(train_items) + list(val_items))
        n = len(train_items)
        rows, labels = (features, np.concatenate([train_y, val_y])) if refit_on_validation else (features[:n], train_y)
        head = fit_head(rows, labels, n_classes, random_state=random_state)
        self.weight, self.bias = head.weight, head.bias
        return {"C": head.C, "C_chosen_by": head.chosen_by, "val_accuracy": head.cv_accuracy, "history": head.history}

    def predict_logits(self, items, batch_size: int = 0, progress: bool = False) -> np.ndarray:
        """Logits ``(n, k)``; ``batch_size`` and ``progress`` are the torch models' (a baseline is one matrix product)."""
        return self.transform(items) @ self.weight.T + self.bias

    def config_fields(self) -> dict:
        """What config.json records to rebuild this model: the baseline's registered name."""
        return {"baseline": self.name}

    def save(self, folder) -> None:
        settings, arrays = self.state()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"weight": self.weight, "bias": self.bias, **arrays}
        write_atomic(folder / ARRAYS_FILE, lambda temporary: save_file(tensors, temporary))
        write_text_atomic(folder / STATE_FILE, json.dumps({"name": self.name, **settings}))

    @classmethod
    def load(cls, folder) -> "Baseline":
        folder = Path(folder)
        settings = read_json_object(folder / STATE_FILE, fix="re-save the model")
        try:
            arrays = load_file(str(folder / ARRAYS_FILE))
        except (OSError, ValueError) as error:
            raise RunFolderError(f"the baseline model in {folder} is missing or damaged ({error}); re-save the model") from None
        baseline = cls()
        baseline.weight, baseline.bias = arrays.pop("weight"), arrays.pop("bias")
        baseline.set_state(settings, arrays)
        return baseline
