"""TransferClassifier: transfer learning behind scikit-learn's estimator contract.

``__init__`` only stores its keyword arguments (the fields of :class:`~headstart.config.FitConfig`);
``fit`` reads the data, checks and resolves the parameters once into a frozen
:class:`~headstart.config.ResolvedConfig` (:mod:`headstart.fitting`), and runs the strategy, or the
planner for ``strategy="auto"``, from that config; it returns ``self``, and everything learned ends
in ``_``. No other module touches its private attributes or changes its state. Inputs: image file
paths, PIL images or uint8 arrays ``(n, h, w[, c])``; strings; audio file paths or 1-D float
waveforms at 16 kHz; a data path (folder / CSV / JSONL / Parquet) with ``y=None``; or a 2-D numeric
array with ``backbone="precomputed"``. Equal-length waveforms (fixed one-second clips) are read as
audio, not as feature rows, once the model is audio or the backbone named takes audio.
"""

from __future__ import annotations

import functools
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from .backbones import backbone_modality
from .cache import open_cache
from .config import DEFAULTS, check_ray_address, parse_budget
from .data import LabeledData, check_classification_labels, from_arrays, load_dataset, stratified_split
from .distributed import is_main
from .errors import ConfigError, DataError, NotFittedError
from .fitting import check_options, fit_strategy, resolve, resolve_device
from .train import seed_everything


# What to pass for each modality, for the error that names a mismatch.
_INPUTS = {"image": "image file paths, PIL images or uint8 arrays (n, h, w[, c])", "text": "strings",
           "audio": "audio file paths or float waveforms at 16 kHz (a list of 1-D arrays, or a 2-D array of one clip "
                    "per row; at another rate, set sample_rate)",
           "features": "a 2-D array of feature rows, as many columns as in fit"}


class TransferClassifier(ClassifierMixin, BaseEstimator):
    """Classify images, texts, audio or feature vectors by transferring a pretrained backbone.

    Audio: file paths, or 1-D float waveforms sampled at 16 kHz. Waveforms of equal length (fixed
    clips, a 2-D array of one clip per row) are read as audio when the backbone named takes audio
    and, after fitting, whenever the model is audio; ``sample_rate`` (Hz) gives the rate of waveform
    arrays, resampled to 16 kHz, and marks equal-length rows as clips for ``backbone="auto"`` too.

    Every parameter is documented in :class:`headstart.config.FitConfig` (and in
    ``headstart fit --help``). Fitted attributes: ``classes_``, ``model_`` (the torch model),
    ``backbone_`` (its backbone), ``history_``, ``fit_summary_``, ``skipped_`` (inputs left out of
    training, with reasons), ``n_features_in_`` (precomputed features only).
    """

    def __init__(self, backbone=DEFAULTS.backbone, strategy=DEFAULTS.strategy, budget=DEFAULTS.budget, freeze=DEFAULTS.freeze,
                 lora_rank=DEFAULTS.lora_rank, contrastive_loss=DEFAULTS.contrastive_loss, epochs=DEFAULTS.epochs, lr=DEFAULTS.lr, layer_decay=DEFAULTS.layer_decay,
                 weight_decay=DEFAULTS.weight_decay, batch_size=DEFAULTS.batch_size, patience=DEFAULTS.patience,
                 regularizer=DEFAULTS.regularizer,
                 regularizer_weight=DEFAULTS.regularizer_weight, adapt=DEFAULTS.adapt, adapt_weight=DEFAULTS.adapt_weight,
                 C=DEFAULTS.C, val_size=DEFAULTS.val_size, image_size=DEFAULTS.image_size,
                 max_length=DEFAULTS.max_length, sample_rate=DEFAULTS.sample_rate, train_bn=DEFAULTS.train_bn,
                 window=DEFAULTS.window, augment=DEFAULTS.augment,
                 randaugment=DEFAULTS.randaugment, mixup=DEFAULTS.mixup, cutmix=DEFAULTS.cutmix,
                 token_dropout=DEFAULTS.token_dropout, label_smoothing=DEFAULTS.label_smoothing,
                 average_checkpoints=DEFAULTS.average_checkpoints, cache_dir=DEFAULTS.cache_dir,
                 checkpoint_dir=DEFAULTS.checkpoint_dir, ray_address=DEFAULTS.ray_address,
                 device=DEFAULTS.device, random_state=DEFAULTS.random_state, verbose=DEFAULTS.verbose):
        self.backbone = backbone
        self.strategy = strategy
        self.budget = budget
        self.freeze = freeze
        self.lora_rank = lora_rank
        self.contrastive_loss = contrastive_loss
        self.epochs = epochs
        self.lr = lr
        self.layer_decay = layer_decay
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.patience = patience
        self.regularizer = regularizer
        self.regularizer_weight = regularizer_weight
        self.adapt = adapt
        self.adapt_weight = adapt_weight
        self.C = C
        self.val_size = val_size
        self.image_size = image_size
        self.max_length = max_length
        self.sample_rate = sample_rate
        self.train_bn = train_bn
        self.window = window
        self.augment = augment
        self.randaugment = randaugment
        self.mixup = mixup
        self.cutmix = cutmix
        self.token_dropout = token_dropout
        self.label_smoothing = label_smoothing
        self.average_checkpoints = average_checkpoints
        self.cache_dir = cache_dir
        self.checkpoint_dir = checkpoint_dir
        self.ray_address = ray_address
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- fitting ----------------------------------------------------------------------
    def fit(self, X, y=None, X_target=None, y_target=None):
        """Fit on labeled ``X, y``; ``X_target``: unlabeled inputs of the deployment domain, for ``adapt``.

        ``y_target``: labels of some target inputs (one per ``X_target`` row, None where unknown);
        with ``adapt="auto"`` they decide between methods instead of the unsupervised validator.
        """
        if self.adapt == "auto":
            return self._fit_choosing_adaptation(X, y, X_target, y_target)
        check_options(self.get_params())
        if self.ray_address is not None:  # before reading any data: say how to install Ray
            from .planner.parallel import require_ray

            require_ray()
        if hasattr(self, "n_features_in_"):
            del self.n_features_in_  # a refit on images or text must not keep a stale feature count
        data = self._read(X, y, require_labels=True)
        labels = np.asarray(data.labels)
        check_classification_labels(labels, data.source)
        stratified_split(labels, self.val_size, self.random_state)  # refuse unsplittable labels, naming the user's
        self.classes_, encoded = np.unique(labels, return_inverse=True)
        self.modality_ = data.modality
        target = self._read_target(X_target, data)
        config = resolve(self.get_params(), data, self.n_features_in_ if data.modality == "features" else None)
        seed_everything(self.random_state)
        started = time.perf_counter()
        if config.strategy == "auto":
            model, summary = self._plan(config, data, encoded)
        else:
            result = fit_strategy(config, data, encoded, len(self.classes_), target_items=target, log=self._log,
                                  epoch_log=self._log if self.verbose else None)
            model, self.history_ = result.model, result.history
            summary = {**result.summary, "strategy": config.strategy, "backbone": config.backbone}
        self.skipped_ = [{"where": s.where, "reason": s.reason} for s in data.skipped]
        self.fit_summary_ = {**summary, "n_labeled": len(labels), "n_skipped": len(data.skipped),
                             "fit_seconds": time.perf_counter() - started, "modality": data.modality}
        self._set_model(model)
        if self.backbone_ is not None:
            truncated = self.backbone_.count_truncated(data.inputs)
            self.fit_summary_["n_truncated"] = truncated
            if truncated:
                warnings.warn(f"{truncated} of {len(data)} inputs of {data.source} are longer than "
                              f"{self.backbone_.name}'s {getattr(self.backbone_, 'max_length', '?')} tokens and were "
                              f"truncated; raise max_length (up to the model's limit) if their ends matter",
                              UserWarning, stacklevel=2)
        return self

    def _plan(self, config, data: LabeledData, encoded: np.ndarray):
        """strategy="auto": the planner composes fits of ``fit_strategy``; returns the model and the summary."""
        from .planner import plan_and_fit

        fit = functools.partial(fit_strategy, n_classes=len(self.classes_))
        outcome = plan_and_fit(config, data, encoded, self.classes_, fit=fit, log=self._log)
        self.plan_, winner, self.history_ = outcome.plan, outcome.decision.winner, outcome.history
        train_part, held_out = self.plan_["split_sizes"]
        return outcome.model, {
            "strategy": "auto", "chosen": winner.name, "chosen_strategy": winner.strategy,
            "backbone": winner.backbone or winner.strategy, "val_accuracy": winner.mean,
            "n_train": train_part, "n_val": held_out,
            # the mean pools every split's held-out part: its interval is over this many predictions
            "n_val_scored": len(winner.correct) or held_out, "splits": self.plan_["splits"],
            "negative_transfer": self.plan_["negative_transfer"], "verdict": self.plan_["verdict"]}

    def _fit_choosing_adaptation(self, X, y, X_target, y_target):
        from sklearn.base import clone

        from .adapt.select import WEIGHTS, select_adaptation

        if X_target is None:
            raise ConfigError("adapt='auto' chooses how to align the training data with unlabeled target data; pass "
                              "fit(X, y, X_target=...) (CLI: --target PATH)")
        if self.ray_address is not None:  # each candidate checks its own options; where they run is checked here
            from .planner.parallel import require_ray

            check_ray_address(self.get_params())
            require_ray()
        started = time.perf_counter()
        target_items = self._read(X_target, None, require_labels=False).inputs

        fitted = {}

        def fit_candidate(method, weight):
            candidate = _fit_adaptation_candidate((self, X, y, X_target), method, weight)
            if method is None:  # kept for the report's source-only vs adapted comparison
                fitted["source_only"] = candidate
            return candidate

        def fit_all(plan, seconds):  # with ray_address: every candidate at once, as Ray tasks
            from .errors import TrainingDivergedError
            from .planner.parallel import map_in_order

            outcomes = map_in_order(self.ray_address, _fit_adaptation_candidate, (clone(self), X, y, X_target), plan,
                                    device=resolve_device(self.device), seconds=seconds,
                                    returned=(TrainingDivergedError,))
            for (method, _), (outcome, took) in zip(plan, outcomes):
                if method is None:
                    fitted["source_only"] = outcome
                yield outcome, took

        weights = WEIGHTS if self.adapt_weight is None else (self.adapt_weight,)
        budget = None if self.budget is None else parse_budget(self.budget)
        best, record = select_adaptation(fit_candidate, target_items, y_target, weights=weights,
                                         source_validation=self._source_validation(X, y), log=self._log,
                                         budget_seconds=budget, fit_all=fit_all if self.ray_address else None)
        for name in [name for name in vars(best) if name.endswith("_") and not name.startswith("__")]:
            setattr(self, name, getattr(best, name))  # the winner's fitted state becomes this estimator's
        if hasattr(self, "source_only_"):
            del self.source_only_
        if best is not fitted.get("source_only") and "source_only" in fitted:
            self.source_only_ = fitted["source_only"]
        self.adaptation_ = record
        # the time the user waited: every candidate's fit, not only the one kept
        self.fit_summary_ = {**self.fit_summary_, "adaptation": record,
                             "chosen_fit_seconds": self.fit_summary_["fit_seconds"],
                             "fit_seconds": time.perf_counter() - started}
        return self

    def _source_validation(self, X, y):
        """The validation rows every candidate of ``adapt="auto"`` holds out (the same split as ``fit``'s), for DEV;
        ``None`` for the planner, which splits its own way."""
        from .adapt.select import SourceValidation

        if self.strategy == "auto":
            return None
        data = self._read(X, y, require_labels=True)
        labels = np.asarray(data.labels)
        encoded = np.unique(labels, return_inverse=True)[1]
        train_idx, val_idx = stratified_split(encoded, self.val_size, self.random_state)
        pick = lambda idx: [data.inputs[i] for i in idx]
        return SourceValidation(pick(train_idx), pick(val_idx), labels[val_idx],
                                features=lambda estimator, items: estimator._features(items))

    def _set_model(self, model) -> None:
        # a baseline runs on numpy and an average has no single backbone: both leave backbone_ None
        self.model_ = model.to(self._device_for_torch()) if hasattr(model, "to") else model
        self.backbone_ = getattr(self.model_, "backbone", None)
        # of the weights before training
        self.pretrained_fingerprint_ = self.backbone_.pretrained_fingerprint if self.backbone_ is not None else None

    def _read_target(self, X_target, data: LabeledData):
        if X_target is None:
            if self.adapt is not None:
                raise ConfigError(f"adapt={self.adapt!r} aligns the training data with unlabeled target data; pass "
                                  f"fit(X, y, X_target=...) (CLI: --target PATH)")
            return None
        target = self._read(X_target, None, require_labels=False)
        if target.modality != data.modality:
            raise DataError(f"X_target holds {target.modality} inputs ({target.source}) but the training data holds "
                            f"{data.modality}; pass target inputs of the same kind")
        if self.adapt is None:
            warnings.warn("X_target was given but adapt is None, so it is not used; set adapt='coral' (or another "
                          "method) to align with it", UserWarning, stacklevel=3)
        return list(target.inputs)

    def _read(self, X, y, *, require_labels: bool) -> LabeledData:
        if isinstance(X, LabeledData):
            if X.modality == "features":
                return self._read_features(np.stack(X.inputs), X.labels, require_labels=require_labels)
            return X
        if isinstance(X, (str, Path)):  # one path: a folder or a table, labels inside
            if y is not None:
                raise ConfigError(f"X is a data path ({str(X)!r}) that holds its own labels, and y was given too; "
                                  f"pass either the path alone or X and y")
            return load_dataset(X, require_labels=require_labels)
        if require_labels and y is None:
            raise DataError(f"{type(self).__name__} requires y to be passed, but the target y is None: pass y, or "
                            f"a data path (folder / CSV / JSONL / Parquet) that holds the labels")
        if self.backbone == "precomputed":
            return self._read_features(X, y, require_labels=require_labels)
        data = from_arrays(X, y, sample_rate=self.sample_rate)  # a sample rate says numeric rows are waveforms
        if data.modality == "features" and self._reads_audio(fitting=require_labels):
            return from_arrays(X, y, modality="audio")  # equal-length clips: rows of samples, not features
        if data.modality == "features":
            return self._read_features(X, y, require_labels=require_labels)
        return data

    def _reads_audio(self, *, fitting: bool) -> bool:
        """Whether numeric rows are waveforms: fixed-length clips are as common as features for audio, so the
        model's modality decides (after fit), or, while fitting, the modality of the backbone named."""
        if not fitting and hasattr(self, "modality_"):
            return self.modality_ == "audio"
        return isinstance(self.backbone, str) and self.backbone != "auto" and backbone_modality(self.backbone) == "audio"

    def _read_features(self, X, y, *, require_labels: bool) -> LabeledData:
        """Feature vectors go through scikit-learn's own validation: its checks, its messages."""
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import validate_data

        try:
            if require_labels:
                if y is None:
                    raise DataError(f"{type(self).__name__} requires y to be passed, but the target y is None")
                X, y = validate_data(self, X, y, reset=True, dtype=[np.float32, np.float64])
                check_classification_targets(y)
            else:
                X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        except DataError:
            raise
        except ValueError as error:  # scikit-learn's wording, kept (its checks expect it), as our error type
            raise DataError(f"{error} (backbone='precomputed' takes a 2-D array of finite numbers, one row per "
                            f"example)") from error
        return LabeledData(inputs=list(np.asarray(X, dtype=np.float32)), labels=y, modality="features",
                           source="array X")

    def _device_for_torch(self) -> torch.device:
        return torch.device(resolve_device(self.device))

    def _log(self, message: str) -> None:
        if self.verbose and is_main():  # under torchrun, one process speaks for all
            print(f"[headstart] {message}")

    # -- prediction ---------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first, "
                                 f"or load a saved one with {type(self).__name__}.load(path)")

    def decision_function(self, X) -> np.ndarray:
        """Class scores (logits) ``(n, n_classes)``; for two classes, ``(n,)`` as in scikit-learn."""
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def _logits(self, X) -> np.ndarray:
        self._check_fitted()
        data = self._read(X, None, require_labels=False)
        if data.skipped:
            raise DataError(f"cannot predict: {len(data.skipped)} input(s) unreadable, first {data.skipped[0].where}: "
                            f"{data.skipped[0].reason}; fix or remove them")
        expected = self.modality_
        if data.modality != expected:
            raise DataError(f"this model was trained on {expected} inputs but received {data.modality} "
                            f"({data.source}); pass {_INPUTS.get(expected, expected + ' inputs')}")
        if self.backbone_ is not None and (truncated := self.backbone_.count_truncated(data.inputs)):
            warnings.warn(f"{truncated} of {len(data)} inputs are longer than {self.backbone_.name}'s "
                          f"{getattr(self.backbone_, 'max_length', '?')} tokens and were truncated before predicting",
                          UserWarning, stacklevel=3)
        if self._backbone_unchanged():
            return self._logits_from_cached_features(data.inputs)
        return np.asarray(self.model_.predict_logits(data.inputs, batch_size=max(64, self.batch_size or 0),
                                                     progress=bool(self.verbose)))

    def _backbone_unchanged(self) -> bool:
        """Whether the backbone still holds its pre-trained weights (a linear probe, frozen-feature adaptation)."""
        return (self.backbone_ is not None and self.modality_ != "features" and self.pretrained_fingerprint_ is not None
                and self.backbone_.weights_fingerprint() == self.pretrained_fingerprint_)

    def _logits_from_cached_features(self, items) -> np.ndarray:
        """The head on the feature cache's rows: the probe was trained on exactly these, and predicting again on
        the same inputs (adapt="auto" scores every candidate on the target; a report re-reads test data) runs no
        forward pass."""
        features = self._features(items)
        head = self.model_.head
        with torch.inference_mode():
            return head(torch.as_tensor(features, dtype=torch.float32, device=head.weight.device)).float().cpu().numpy()

    def _features(self, items) -> np.ndarray:
        """What the head reads, ``(n, feature_dim)``: the feature cache's rows while the backbone is pre-trained."""
        if self._backbone_unchanged():
            layer = self.backbone_.layer_names[-1]
            return open_cache(self.cache_dir).features(self.backbone_, list(items), [layer],
                                                       batch_size=max(64, self.batch_size or 0),
                                                       progress=bool(self.verbose))[layer]
        from .model import predict_features

        return predict_features(self.model_, list(items), batch_size=max(64, self.batch_size or 0),
                                progress=bool(self.verbose))

    def predict_proba(self, X) -> np.ndarray:
        logits = torch.from_numpy(self._logits(X))
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)

    def predict(self, X) -> np.ndarray:
        winners = self._logits(X).argmax(axis=1)  # checks fitted-ness before classes_ is read
        return self.classes_[winners]

    # -- persistence --------------------------------------------------------------------
    def save(self, path, *, metrics: dict | None = None) -> Path:
        """Write a run folder: weights (safetensors), config.json, metrics.json, history.json, plan.json.

        With ``adapt="auto"`` and an adapted winner, the source-only candidate goes to ``source_only/``
        inside it, so ``headstart report`` can compare the two on labeled target data."""
        from .runs import save_run

        self._check_fitted()
        config = {
            "classes": self.classes_.tolist(),
            "classes_dtype": self.classes_.dtype.str,
            "strategy": self.strategy,
            "modality": self.modality_,
            "params": self.get_params(),
            "pretrained_fingerprint": self.pretrained_fingerprint_,
            "n_features_in": getattr(self, "n_features_in_", None),
        }
        folder = save_run(self.model_, path, config, metrics={**self.fit_summary_, **(metrics or {}),
                          "skipped": self.skipped_}, history=self.history_, plan=getattr(self, "plan_", None))
        if getattr(self, "source_only_", None) is not None:  # adapt="auto" won by adapting: keep the reference
            self.source_only_.save(Path(folder) / "source_only")
        return folder

    @classmethod
    def load(cls, path) -> "TransferClassifier":
        """Rebuild a fitted classifier from a run folder written by :meth:`save` or ``headstart fit``."""
        import json

        from .atomic import read_json_object
        from .runs import load_run

        model, config = load_run(path)
        params = {k: v for k, v in config["params"].items() if k in cls._get_param_names()}
        estimator = cls(**params)
        dtype = np.dtype(config.get("classes_dtype", "O"))
        estimator.classes_ = np.asarray(config["classes"], dtype=dtype if dtype.kind != "O" else object)
        estimator._set_model(model)
        estimator.modality_ = config.get("modality") or model.backbone.modality
        estimator.pretrained_fingerprint_ = config.get("pretrained_fingerprint")
        if config.get("n_features_in") is not None:
            estimator.n_features_in_ = int(config["n_features_in"])
        folder = Path(path)
        fix = "the run folder is damaged; fit and save the model again"
        history = folder / "history.json"  # a list, the one file that is not an object
        estimator.history_ = json.loads(history.read_text(encoding="utf-8")) if history.is_file() else []
        estimator.fit_summary_ = read_json_object(folder / "metrics.json", fix=fix, missing_ok=True)
        estimator.skipped_ = estimator.fit_summary_.pop("skipped", [])
        if (folder / "plan.json").is_file():
            estimator.plan_ = read_json_object(folder / "plan.json", fix=fix)
        estimator.headstart_version_ = config["headstart_version"]
        return estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _fit_adaptation_candidate(shared, method: str | None, weight: float | None) -> TransferClassifier:
    """One candidate of ``adapt="auto"``: a clone of the estimator fitted with ``method`` at ``weight`` (None:
    source-only). ``shared`` is ``(estimator, X, y, X_target)``; a module function, so that it pickles for Ray."""
    from sklearn.base import clone

    estimator, X, y, X_target = shared
    # the budget is the search's, not each candidate's, and each candidate is one fit wherever it runs
    candidate = clone(estimator).set_params(adapt=method, adapt_weight=weight if method else None, budget=None,
                                            ray_address=None)
    if estimator.checkpoint_dir:  # one checkpoint per candidate: each resumes its own fit, none refuses another's
        from .adapt.select import candidate_name

        candidate.set_params(checkpoint_dir=str(Path(estimator.checkpoint_dir) / candidate_name(method, weight)))
    return candidate.fit(X, y, X_target=X_target if method else None)
