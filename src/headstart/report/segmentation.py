"""The report of a segmentation run: predicted masks over the images beside the truth, one HTML page.

:func:`build_segmentation_report` loads a :class:`~headstart.segmentation.TransferSegmenter` run
folder, predicts on labeled images it never saw and writes one self-contained page: the chosen
strategy with its test mean IoU (Jaccard index, averaged over classes as in PASCAL VOC), the
candidates the fit compared (``plan_``) with a plain verdict on whether transfer beat the no-transfer
baselines, the per-class IoU and a grid of examples. Each example is one PNG of four panels of
shape (h, w, 3) uint8: the image, the true mask overlaid, the predicted mask overlaid (class colours
alpha-blended at 0.45, background left as is) and the error map (wrong pixels in red).
"""

from __future__ import annotations

import base64
import io
import math
import os
import time
from pathlib import Path

import numpy as np

from .._version import __version__
from ..atomic import write_text_atomic
from ..errors import ConfigError, DataError, DataPathError, RunFolderError
from ..metrics import number_or_none
from .build import REPORT_FILE, render_template

TEMPLATE = "segmentation.html"
ALPHA = 0.45
NO_TRANSFER = ("scratch", "pixels")  # the fits that use no pretrained weights
ERROR_RED = (220, 38, 38)
PANEL_SIZE = 160  # each panel is drawn at least this many pixels wide, nearest-neighbour, so 32-px images show
# tab10 without its grey, then tab20's light shades: distinct colours for the first 18 foreground classes
_COLOURS = ("1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "bcbd22", "17becf",
            "aec7e8", "ffbb78", "98df8a", "ff9896", "c5b0d5", "c49c94", "f7b6d2", "dbdb8d", "9edae5")


def palette(n_classes: int) -> np.ndarray:
    """``(n_classes, 3)`` uint8 colours, one per class, all distinct; class 0 (background) is black and is
    never drawn. Past 18 foreground classes the hues are spread by the golden ratio."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ConfigError(f"palette needs a whole number of classes >= 1 (background included), got {n_classes!r}")
    import colorsys

    colours = [(0, 0, 0)]
    for index in range(1, n_classes):
        if index <= len(_COLOURS):
            code = _COLOURS[index - 1]
            colours.append(tuple(int(code[i:i + 2], 16) for i in (0, 2, 4)))
        else:
            hue = (index * 0.618033988749895) % 1.0
            value = 0.95 if index % 2 else 0.7  # alternate brightness so neighbouring hues stay apart
            colours.append(tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.8, value)))
    return np.array(colours, dtype=np.uint8)


def overlay(image: np.ndarray, mask: np.ndarray, colours: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """``(h, w, 3)`` uint8: ``image`` with each pixel of class c > 0 blended as ``(1-alpha)*pixel + alpha*colour[c]``
    (rounded to the nearest integer); background pixels (class 0) are left as they are. A grey (h, w)
    image is drawn as RGB."""
    rgb = _as_rgb(image)
    mask = np.asarray(mask)
    if mask.shape != rgb.shape[:2]:
        raise DataError(f"the mask has shape {mask.shape} but its image is {rgb.shape[:2]}; a mask needs one class "
                        f"per pixel of its image")
    if mask.size and (mask.min() < 0 or mask.max() >= len(colours)):
        raise DataError(f"the mask holds class {int(mask.max() if mask.max() >= len(colours) else mask.min())}, "
                        f"outside the {len(colours)} classes of the palette (0..{len(colours) - 1})")
    blended = (1 - alpha) * rgb.astype(np.float64) + alpha * np.asarray(colours, dtype=np.float64)[mask]
    return np.where((mask > 0)[..., None], np.rint(blended), rgb).astype(np.uint8)


def _as_rgb(image) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]
    if array.ndim != 3 or array.shape[2] != 3:
        raise DataError(f"an image must be (h, w), (h, w, 1), (h, w, 3) or (h, w, 4), got shape {array.shape}")
    if array.dtype != np.uint8:  # no guessing whether floats are 0..1 or 0..255
        raise DataError(f"an image must be uint8 (0..255), got dtype {array.dtype}; convert it first, e.g. "
                        f"(image * 255).round().astype(np.uint8) for floats in 0..1")
    return array


def error_map(image: np.ndarray, true_mask: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` uint8: the image in faded grey, the pixels whose predicted class is wrong in red."""
    grey = _as_rgb(image).mean(axis=2, keepdims=True)
    faded = np.repeat(np.rint(155 + 0.35 * grey), 3, axis=2).astype(np.uint8)  # light, so red stands out
    wrong = np.asarray(true_mask) != np.asarray(predicted)
    faded[wrong] = ERROR_RED
    return faded


def example_strip(image, true_mask, predicted, colours) -> str:
    """Base64 PNG of one example: image | truth overlaid | prediction overlaid | error map, side by side."""
    from PIL import Image

    panels = [_as_rgb(image), overlay(image, true_mask, colours), overlay(image, predicted, colours),
              error_map(image, true_mask, predicted)]
    h, w = panels[0].shape[:2]
    scale = max(1, math.ceil(PANEL_SIZE / max(w, 1)))
    gap = 8
    strip = Image.new("RGB", (4 * w * scale + 3 * gap, h * scale), (255, 255, 255))
    for index, panel in enumerate(panels):
        big = Image.fromarray(panel).resize((w * scale, h * scale), Image.NEAREST)  # keep mask edges crisp
        strip.paste(big, (index * (w * scale + gap), 0))
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- the report


def build_segmentation_report(run_dir, images, masks=None, out=None, max_examples: int = 8,
                              class_names=None) -> Path:
    """Write the report of a segmentation run folder (one self-contained HTML file) and return its path.

    ``images``/``masks``: labeled test images the run never saw, in any layout
    :func:`headstart.segmentation.data.load_segmentation` reads (a root holding ``images/`` and
    ``masks/``, an images folder and its masks folder matched by file stem, or arrays). ``out``: the
    HTML file (default ``RUN_DIR/report.html``). ``max_examples``: how many test images the example
    grid shows (the first ones, in order). ``class_names``: a name per mask value (a list indexed by
    value, or a dict); by default the ``classes.txt`` beside ``images/`` (one name per line, as
    :func:`headstart.datasets.segmentation.write_folders` writes it), else the mask values themselves.
    """
    from ..segmentation import TransferSegmenter, iou_scores
    from ..segmentation.metrics import index_masks
    from ..segmentation.data import load_segmentation

    folder = Path(run_dir).expanduser()
    if not folder.is_dir():
        raise RunFolderError(f"run folder {str(folder)!r} does not exist; pass the folder of `TransferSegmenter.save` "
                             f"or the --out folder of `headstart fit --task segmentation`")
    if isinstance(max_examples, bool) or not isinstance(max_examples, (int, np.integer)) or max_examples < 0:
        raise ConfigError(f"max_examples must be a whole number >= 0 of example images to show, got {max_examples!r}")
    target = _target(folder, out)
    segmenter = TransferSegmenter.load(folder)
    data = load_segmentation(images, masks, require_masks=True, window=segmenter.config_.window)
    started = time.perf_counter()
    predicted = segmenter.predict(data.images)
    predict_seconds = time.perf_counter() - started
    # as TransferSegmenter.score: a test class the training masks never held counts as IoU 0
    labels, truth, predicted = index_masks(segmenter.classes_, data.masks, predicted)
    unseen = np.setdiff1d(labels, segmenter.classes_)
    names, names_from = _class_names(class_names, images, labels)
    scores = iou_scores(truth, predicted, len(names))
    report = _summary(segmenter, folder, names, scores, truth, _source(images, masks, data), predict_seconds)
    report["names_from"] = names_from
    report["unseen"] = [names[i] for i in np.searchsorted(labels, unseen)]
    colours = palette(len(names))
    report["legend"] = [{"name": name, "colour": _hex(colours[i])} for i, name in enumerate(names) if i > 0]
    report["examples"] = [{
        "index": i, "name": Path(data.names[i]).name,
        "mean_iou": number_or_none(iou_scores([truth[i]], [predicted[i]], len(names))["mean_iou"]),
        "size": f"{truth[i].shape[1]}×{truth[i].shape[0]}",
        "png": example_strip(data.images[i], truth[i], predicted[i], colours),
    } for i in range(min(max_examples, len(truth)))]
    write_text_atomic(target, render(report))
    return target


def _source(images, masks, data) -> str:
    if isinstance(images, (str, os.PathLike)):
        return str(Path(images).expanduser()) + (f" (masks {Path(masks).expanduser()})" if masks is not None else "")
    return f"{len(data.images)} images given as arrays"


def _class_names(names, images, classes: np.ndarray) -> tuple[list[str], str]:
    """A name per class (in the order of ``classes``, the mask values), and where the names came from."""
    values = [int(v) for v in classes]
    where = "class_names"
    if names is None and isinstance(images, (str, os.PathLike)):
        root = Path(images).expanduser()
        # beside images/: the root given, or the parent of a folder named images (never an unrelated parent)
        listed = root / "classes.txt" if (root / "images").is_dir() else root.parent / "classes.txt"
        if listed.is_file() and ((root / "images").is_dir() or root.name == "images"):
            names = [line.strip() for line in listed.read_text(encoding="utf-8").splitlines() if line.strip()]
            where = str(listed)
    if names is None:
        return [str(v) for v in values], "the mask values (no classes.txt beside images/ and no class_names given)"
    lookup = dict(names) if isinstance(names, dict) else dict(enumerate(names))
    missing = [v for v in values if v not in lookup]
    if missing:
        raise ConfigError(f"{where} names {len(lookup)} classes but the run's masks also hold the value(s) "
                          f"{missing[:10]}; give one name per mask value (line k of classes.txt names value k)")
    return [str(lookup[v]) for v in values], where


def _target(folder: Path, out) -> Path:
    target = Path(out).expanduser() if out is not None else folder / REPORT_FILE
    if not target.parent.is_dir():
        raise DataPathError(f"cannot write {target.absolute()}: the folder {target.parent.absolute()} does not exist")
    if target.is_dir():
        raise DataPathError(f"cannot write the report to {target.absolute()}: it is a folder; pass a file name "
                            f"such as {target / REPORT_FILE}")
    return target


def _summary(segmenter, folder: Path, classes: list[str], scores: dict, truth, source: str, seconds: float) -> dict:
    counts = np.bincount(np.concatenate([m.ravel() for m in truth]).astype(np.int64), minlength=len(classes))
    per_class = scores["per_class_iou"]  # {class index: IoU, or None when in neither truth nor prediction}
    plan = _plan_rows(getattr(segmenter, "plan_", None) or [], segmenter.strategy_)
    return {
        "run_dir": str(folder.absolute()), "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "headstart_version": __version__, "classes": classes, "strategy": segmenter.strategy_,
        "fit_seconds": number_or_none(getattr(segmenter, "fit_seconds_", None)),
        "backbone": segmenter.config_.backbone, "n_train": getattr(segmenter, "n_train_images_", None),
        "test": {"data": source, "n_images": len(truth), "mean_iou": number_or_none(scores["mean_iou"]),
                 "predict_seconds": seconds},
        "per_class": [{"name": name, "iou": number_or_none(per_class[i]), "pixels": int(counts[i])}
                      for i, name in enumerate(classes)],
        "plan": plan, "verdict": verdict(plan, segmenter.strategy_),
    }


def _plan_rows(plan: list[dict], kept: str) -> list[dict]:
    rows = []
    for entry in plan:
        name = str(entry.get("strategy"))
        transfer = entry.get("transfer", name not in NO_TRANSFER)
        rows.append({"strategy": name, "val_iou": number_or_none(entry.get("val_mean_iou")),
                     "seconds": number_or_none(entry.get("seconds")), "chosen": entry.get("chosen", name == kept),
                     "kind": "transfer" if transfer else "baseline", "rule": entry.get("rule", ""),
                     # whether it beat the default candidate by a paired 95% per-image interval (None: not recorded)
                     "beats_default": entry.get("beats_default")})
    return rows


def verdict(plan: list[dict], kept: str) -> tuple[str, str, str]:
    """``(css class, bold words, sentence)``: did the kept strategy beat the no-transfer baselines?"""
    scored = [row for row in plan if row["val_iou"] is not None]
    chosen = next((row for row in scored if row["strategy"] == kept), None)
    baselines = [row for row in scored if row["kind"] == "baseline"]
    transfer = [row for row in scored if row["kind"] == "transfer"]
    if chosen is None or len(scored) < 2:
        return ("neutral", "Not compared.", f"Only {kept} was fit, so the run cannot say whether transfer beat "
                "training without pretrained weights; fit with strategy=\"auto\" to compare.")
    if not baselines:
        return ("neutral", "No baseline.", f"The run kept {kept} (validation mean IoU {chosen['val_iou']:.3f}) but "
                "scored no no-transfer baseline, so it cannot say whether transfer helped.")
    base = max(baselines, key=lambda row: row["val_iou"])
    if chosen["kind"] == "baseline":
        best = max(transfer, key=lambda row: row["val_iou"]) if transfer else None
        than = (f" than the best pretrained candidate ({best['strategy']}, {best['val_iou']:.3f})" if best else "")
        return ("negative", "Transfer did not pay off.", f"The run kept {kept}, which uses no pretrained weights: its "
                f"validation mean IoU {chosen['val_iou']:.3f} is as good or better{than}.")
    gain = chosen["val_iou"] - base["val_iou"]
    if gain > 0:
        return ("positive", "Transfer helped.", f"The run kept {kept}, a pretrained encoder: validation mean IoU "
                f"{chosen['val_iou']:.3f} against {base['val_iou']:.3f} for the best model without pretrained "
                f"weights ({base['strategy']}), {gain:+.3f}.")
    if base["beats_default"] is False:  # the planner's rule: a lead must clear a paired 95% interval to count
        return ("neutral", "No difference shown.", f"{base['strategy']}, without pretrained weights, scored "
                f"{base['val_iou']:.3f} against {kept}'s {chosen['val_iou']:.3f} on the validation images, a lead the "
                f"paired 95% interval over those images does not confirm, so the default {kept} was kept.")
    return ("negative", "The baseline did better than the kept model.", f"The run kept {kept} (validation mean IoU "
            f"{chosen['val_iou']:.3f}), but {base['strategy']}, without pretrained weights, scored {base['val_iou']:.3f}.")


def render(report: dict) -> str:
    return render_template(TEMPLATE, r=report)


def _hex(colour) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in colour)
