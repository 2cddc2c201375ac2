"""``TransferSegmenter``: semantic segmentation by transfer, the sklearn-style sibling of
:class:`~headstart.TransferClassifier`.

``fit(X, y)`` reads images with integer label masks (see :mod:`.data` for the layouts), trains a
U-Net over a pretrained encoder with one strategy of :mod:`.strategies` (or picks one with
strategy="auto", :mod:`.planner`), checkpointing every epoch under ``run_dir``; ``predict`` returns
label masks at each input's own size; ``score`` is the mean IoU (:mod:`.metrics`). ``save`` writes a
run folder (``model.safetensors`` + ``config.json``) that ``load`` reads back to identical predictions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator

from .._version import __version__
from ..errors import NotFittedError, RunFolderError
from .config import batch_size_for, epochs_for, image_size_for, resolve_config
from .data import check_known, load_segmentation
from .metrics import index_masks, iou_scores
from .model import build_network, encoder_spec
from .pixels import PixelSegmenter
from .planner import choose, validation_split
from .strategies import AUTO_CANDIDATES, STRATEGIES, Context, NetworkSegmenter
from .train import LoopSettings

TASK = "segmentation"
WEIGHTS_FILE, CONFIG_FILE, CHECKPOINT_FOLDER = "model.safetensors", "config.json", "checkpoint"


def _fingerprint(data, config) -> str:
    digest = hashlib.sha256(json.dumps(config.identity(), sort_keys=True, default=str).encode())
    for image, mask in zip(data.images, data.masks):
        digest.update(np.ascontiguousarray(image).tobytes())
        digest.update(np.ascontiguousarray(mask).tobytes())
    return digest.hexdigest()[:16]


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class TransferSegmenter(BaseEstimator):
    """Segment images into the classes of their training masks, by transfer from a pretrained encoder.

    Parameters: ``backbone`` (a zoo image model or ``timm:NAME``), ``strategy`` (frozen, finetune,
    lp_ft, scratch, pixels or auto), ``freeze`` (finetune/lp_ft: first k encoder stages not trained),
    ``epochs``, ``lr`` (decoder; the encoder gets lr/10 when fine-tuned), ``batch_size``, ``image_size``
    (a multiple of 32), ``window`` (16-bit/DICOM intensity window), ``seed``, ``run_dir`` (checkpoints
    every epoch, then the finished run folder), ``resume`` (require a checkpoint in run_dir to continue).

    Learned: ``classes_`` (mask values), ``strategy_``, ``plan_`` (auto's candidates: strategy, val mean
    IoU, seconds), ``history_``, ``frozen_stages_``, ``image_size_``, ``fit_seconds_``, ``model_``.
    """

    def __init__(self, backbone="efficientnet_lite0", strategy="auto", freeze=None, epochs=None, lr=None,
                 batch_size=None, image_size=None, window=None, seed=0, run_dir=None, resume=False, verbose=0):
        self.backbone = backbone
        self.strategy = strategy
        self.freeze = freeze
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.image_size = image_size
        self.window = window
        self.seed = seed
        self.run_dir = run_dir
        self.resume = resume
        self.verbose = verbose

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None):
        started = time.perf_counter()
        config = resolve_config(self)
        spec = encoder_spec(config.backbone)
        data = load_segmentation(X, y, require_masks=True, window=config.window)
        if config.image_size is None:
            config = dataclasses.replace(config, image_size=image_size_for(data.images))
        if config.batch_size is None:
            config = dataclasses.replace(config, batch_size=batch_size_for(len(data.images)))
        self.classes_ = np.unique(np.concatenate([np.unique(m) for m in data.masks]))
        masks = check_known(data, self.classes_)
        checkpoints = self._checkpoint_folder()
        train_idx, val_idx = validation_split(len(data.images), config.seed)
        if config.epochs is None:
            config = dataclasses.replace(config, epochs=epochs_for(len(train_idx), config.batch_size))
        pick = lambda index: ([data.images[i] for i in index], [masks[i] for i in index])  # noqa: E731
        settings = LoopSettings(epochs=config.epochs, patience=config.patience or config.epochs, batch_size=config.batch_size,
                                image_size=config.image_size, seed=config.seed, mean=spec.mean, std=spec.std,
                                n_classes=len(self.classes_), verbose=self.verbose)
        ctx = Context(spec, settings, config.lr, config.freeze, pick(train_idx), pick(val_idx) if len(val_idx) else None,
                      checkpoints, _fingerprint(data, config), _device())
        if config.strategy == "auto":
            fitted, name, self.plan_ = choose(AUTO_CANDIDATES, lambda s: STRATEGIES[s](ctx), ctx.val_set,
                                              settings.n_classes, self.verbose)
        else:
            fitted, name, self.plan_ = STRATEGIES[config.strategy](ctx), config.strategy, []
        self.model_, self.strategy_, self.config_ = fitted, name, config
        self.history_, self.frozen_stages_ = fitted.history, list(fitted.frozen)
        self.image_size_, self.n_train_images_, self.n_val_images_ = config.image_size, len(train_idx), len(val_idx)
        self.fit_seconds_ = time.perf_counter() - started
        if self.run_dir:
            self.save(self.run_dir)
            if checkpoints is not None:
                shutil.rmtree(checkpoints, ignore_errors=True)  # spent: a later fit would resume a finished run
        return self

    def _checkpoint_folder(self) -> Path | None:
        if not self.run_dir:
            return None
        folder = Path(self.run_dir).expanduser() / CHECKPOINT_FOLDER
        if self.resume and not any(folder.rglob("checkpoint.safetensors")):
            raise RunFolderError(f"resume=True but {folder} holds no checkpoint to continue; fit with resume=False "
                                 "to start from the beginning")
        return folder

    # ------------------------------------------------------------------ predict

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError("this TransferSegmenter is not fitted yet; call fit(images, masks) or "
                                 "TransferSegmenter.load(run_dir) first")

    def predict_proba(self, X) -> list[np.ndarray]:
        """Class probabilities ``(n_classes, h, w)`` per image, at each image's own size."""
        self._check_fitted()
        data = load_segmentation(X, require_masks=False, window=self.config_.window)
        return self.model_.predict_proba(data.images)

    def predict(self, X):
        """Label masks (values from ``classes_``) at each input's own size: an ``(n, h, w)`` array when
        X is an array, else a list of ``(h, w)`` arrays (inputs may differ in size)."""
        masks = [self.classes_[p.argmax(0)] for p in self.predict_proba(X)]
        return np.stack(masks) if isinstance(X, np.ndarray) else masks

    def iou(self, X, y=None) -> dict:
        """``{"mean_iou", "per_class_iou": {class value: IoU or None}, "n_images"}`` on labeled data."""
        self._check_fitted()
        data = load_segmentation(X, y, require_masks=True, window=self.config_.window)
        predicted = [self.classes_[p.argmax(0)] for p in self.model_.predict_proba(data.images)]
        labels, truth, predicted = index_masks(self.classes_, data.masks, predicted)
        scores = iou_scores(truth, predicted, len(labels))
        per_class = {int(labels[c]): v for c, v in scores["per_class_iou"].items()}
        return {"mean_iou": scores["mean_iou"], "per_class_iou": per_class, "n_images": len(truth)}

    def score(self, X, y=None) -> float:
        """Mean IoU over the classes present in the truth or the prediction (see :mod:`.metrics`)."""
        return self.iou(X, y)["mean_iou"]

    # ------------------------------------------------------------------ run folder

    def save(self, path) -> Path:
        from safetensors.torch import save_file

        from ..atomic import write_atomic, write_json

        self._check_fitted()
        folder = Path(path).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        tensors = self.model_.tensors()
        write_atomic(folder / WEIGHTS_FILE, lambda temporary: save_file(tensors, temporary))
        write_json(folder / CONFIG_FILE, {
            "task": TASK, "format_version": 1, "headstart_version": __version__, "kind": self.model_.kind,
            "classes": self.classes_.tolist(), "backbone": self.config_.backbone, "strategy": self.strategy_,
            "config": self.config_.identity(), "image_size": self.image_size_,
            "window": None if self.config_.window is None else str(self.config_.window),  # parse_window reads it back
            "frozen_stages": self.frozen_stages_, "plan": self.plan_, "history": self.history_,
            "fit_seconds": self.fit_seconds_})
        return folder

    @classmethod
    def load(cls, path) -> TransferSegmenter:
        from safetensors.torch import load_file

        folder = Path(path).expanduser()
        saved = read_segmentation_config(folder)
        params = {k: saved["config"][k] for k in ("backbone", "strategy", "freeze", "epochs", "lr", "batch_size",
                                                   "image_size", "seed")}
        est = cls(**params, window=saved["window"])
        config = resolve_config(est)
        tensors = load_file(str(folder / WEIGHTS_FILE))
        n_classes = len(saved["classes"])
        if saved["kind"] == "pixels":
            est.model_ = PixelSegmenter.from_tensors(tensors, n_classes)
        else:
            spec = encoder_spec(config.backbone)
            net = build_network(spec, n_classes, pretrained=False)
            try:
                net.load_state_dict({k.removeprefix("network/"): v for k, v in tensors.items()}, strict=True)
            except RuntimeError as error:
                raise RunFolderError(f"{folder / WEIGHTS_FILE} does not fit the network its config.json describes "
                                     f"({str(error)[:300]}); the run folder was modified: fit again") from None
            est.model_ = NetworkSegmenter(net, spec, saved["image_size"], config.batch_size, device=_device())
            est.model_.net.to(est.model_.device)
        est.classes_ = np.asarray(saved["classes"], dtype=np.int64)
        est.config_, est.strategy_, est.plan_ = config, saved["strategy"], saved["plan"]
        est.history_, est.frozen_stages_, est.image_size_ = saved["history"], saved["frozen_stages"], saved["image_size"]
        est.fit_seconds_ = saved.get("fit_seconds")
        return est


def is_segmentation_run(folder) -> bool:
    path = Path(folder).expanduser() / CONFIG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("task") == TASK
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


def read_segmentation_config(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    if not path.is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise RunFolderError(f"{folder} is not a segmentation run folder: it needs {CONFIG_FILE} and {WEIGHTS_FILE} "
                             "(written by TransferSegmenter.save or `headstart fit --task segmentation`)")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        missing = [k for k in ("task", "kind", "classes", "config", "image_size", "strategy") if k not in saved]
    except json.JSONDecodeError as error:
        raise RunFolderError(f"{path} is not valid JSON ({error}); fit again") from None
    if saved.get("task") != TASK or missing:
        raise RunFolderError(f"{path} is not a segmentation run's config (task={saved.get('task')!r}, missing "
                             f"{missing}); load it with TransferClassifier, or fit again")
    return saved
