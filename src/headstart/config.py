"""FitConfig: the one list of fit options. The estimator's parameters, their validation, and the
CLI's ``headstart fit`` flags and help text are all derived from these fields."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields

from .errors import ConfigError, did_you_mean


def option(default, help: str, *, choices=None, minimum=None, maximum=None, kind=None, path=False):
    """``path``: a folder option, which also takes a ``pathlib.Path`` (any ``os.PathLike``)."""
    return field(default=default, metadata={"help": help, "choices": choices, "minimum": minimum,
                                            "maximum": maximum, "kind": kind, "path": path})


@dataclass
class FitConfig:
    backbone: str = option("auto", "Pretrained model: a zoo name (efficientnet_lite0, mobilenetv2_100, minilm_l6), "
                           "timm:NAME, hf:ID, a local model folder, 'precomputed' for feature vectors, or 'auto' "
                           "(the zoo default for the data's modality).", kind=str)
    strategy: str = option("linear_probe", "How to transfer: linear_probe (frozen backbone + logistic head), "
                           "finetune, lp_ft (probe then fine-tune), lora (low-rank adapters in a transformer's attention), scratch (no transfer: random init), or auto "
                           "(rank backbones, try the ladder against a no-transfer baseline, keep the best).", kind=str)
    budget: str | None = option(None, "Time budget of strategy=auto (default 10m) or of adapt=auto's search (default: "
                                "none, every candidate is tried), e.g. '90s', '10m', '1h'.", kind=str)
    freeze: int | None = option(None, "finetune/lp_ft: freeze the first K layer groups (0 = train all; default 0).",
                                minimum=0, kind=int)
    lora_rank: int = option(8, "lora: rank r of the low-rank update added to each attention projection (more = more "
                            "trainable numbers).", minimum=1, kind=int)
    epochs: int = option(10, "Maximum training epochs (fine-tuning strategies).", minimum=1, kind=int)
    lr: float | None = option(None, "Learning rate of the last backbone layer group; the head gets 10x. "
                              "Default: the backbone's own (e.g. 5e-4 images, 5e-5 text; 1e-3 scratch).",
                              minimum=0.0, kind=float)
    layer_decay: float = option(0.75, "Each earlier layer group learns at this fraction of the next one's rate.",
                                minimum=0.0, maximum=1.0, kind=float)
    weight_decay: float = option(0.01, "AdamW weight decay.", minimum=0.0, kind=float)
    batch_size: int | None = option(None, "Examples per training step (default: 32, or fewer on small data so that "
                                    "an epoch takes at least 16 steps, never below 8).", minimum=1, kind=int)
    patience: int = option(3, "Stop after this many epochs without a better validation accuracy.", minimum=1, kind=int)
    regularizer: str | None = option(None, "finetune/lp_ft: keep pre-trained knowledge while fine-tuning: l2_sp, delta, "
                                     "bss, lwf, or several joined by commas.", kind=str)
    regularizer_weight: float | None = option(None, "Weight of each regularizer's term (default: each method's own).",
                                              minimum=0.0, kind=float)
    adapt: str | None = option(None, "With unlabeled target inputs (X_target / --target): align them (linear_probe: "
                               "on cached frozen features through a learned projection; finetune/lp_ft: inside "
                               "the trainable layers) "
                               "with coral, mmd, dann, cdan, cdan_e, mcc, self_training, or auto (each method and "
                               "source-only, judged on the target inputs without labels).", kind=str)
    adapt_weight: float | None = option(None, "Weight of the adaptation term (default: the method's own; adapt=auto "
                                        "tries 0.3, 1 and 0.1).",
                                        minimum=0.0, kind=float)
    C: float | None = option(None, "linear_probe: inverse L2 strength of the logistic head (default: chosen on "
                             "validation).", minimum=0.0, kind=float)
    val_size: float = option(0.2, "Fraction (or count, if >= 1) of labeled data held out for validation, stratified. "
                             "strategy=auto with under 30 examples in some class scores its candidates by 3-fold "
                             "cross-validation instead, and this sets each fold fit's own validation part.",
                             minimum=0.0, kind=float)
    image_size: int | None = option(None, "Resize images to this many pixels square (default: the backbone's, "
                                    "e.g. 224; smaller is faster).", minimum=16, kind=int)
    max_length: int | None = option(None, "Truncate texts to this many tokens (default: the backbone's).",
                                    minimum=8, kind=int)
    train_bn: bool = option(False, "finetune/lp_ft: update BatchNorm running statistics while training (off: small "
                            "batches of a new domain overwrite the pretrained statistics).", kind=bool)
    augment: bool = option(True, "Augment training images (mild random crops and colour jitter).", kind=bool)
    randaugment: bool = option(False, "Training images also go through RandAugment (timm's rand-m9-mstd0.5: two random "
                               "operations of magnitude about 9 per image), replacing the colour jitter. Image "
                               "backbones; fine-tuning strategies.", kind=bool)
    mixup: float = option(0.0, "mixup alpha: train on blends of two images and of their labels, the blend weight drawn "
                          "from Beta(alpha, alpha) per batch (e.g. 0.2; 0 = off). Image backbones; fine-tuning "
                          "strategies.", minimum=0.0, kind=float)
    cutmix: float = option(0.0, "CutMix alpha: paste a box of another image, labels mixed by its area (e.g. 1.0; 0 = "
                           "off). With mixup too, each batch uses one of the two at random. Image backbones; "
                           "fine-tuning strategies.", minimum=0.0, kind=float)
    token_dropout: float = option(0.0, "Replace this fraction of each training text's tokens with [MASK] (deleted when "
                                  "the tokenizer has no mask token); special tokens are kept (0 = off). Text "
                                  "backbones; fine-tuning strategies.", minimum=0.0, maximum=0.5, kind=float)
    label_smoothing: float = option(0.0, "Train towards targets that give this much probability mass to the other "
                                    "classes, spread evenly (e.g. 0.1; 0 = off). Fine-tuning strategies.",
                                    minimum=0.0, maximum=0.5, kind=float)
    average_checkpoints: int = option(0, "At the end of training, average the weights of the K best epochs by "
                                      "validation accuracy and keep the average if it scores at least as well as "
                                      "the best epoch on validation (0 or 1 = off). Fine-tuning strategies.",
                                      minimum=0, kind=int)
    cache_dir: str | None = option(None, "Folder of the feature cache (default: $HEADSTART_CACHE or "
                                   "~/.cache/headstart); 'none' keeps features in memory only.", kind=str, path=True)
    checkpoint_dir: str | None = option(None, "Save a training checkpoint here after every epoch; a fit started "
                                        "again with the same data and options resumes from it.", kind=str, path=True)
    device: str = option("auto", "auto, cpu, or cuda.", choices=("auto", "cpu", "cuda"), kind=str)
    random_state: int = option(0, "Seed of the split, initialisation and data order.", minimum=0, kind=int)
    verbose: int = option(1, "0 silent; 1 progress bars, a line per training epoch, and summaries.", minimum=0, kind=int)


DEFAULTS = FitConfig()
# Options that only the fine-tuning loop (train_classifier) applies.
TRAINING_LOOP_OPTIONS = ("randaugment", "mixup", "cutmix", "token_dropout", "label_smoothing", "average_checkpoints")


def validate(values: dict, strategies, where: str = "TransferClassifier") -> None:
    """Raise ConfigError naming the parameter, the value and the accepted range or choices."""
    known = {f.name: f for f in fields(FitConfig)}
    for name, value in values.items():
        spec = known[name].metadata
        kind, default = spec["kind"], getattr(DEFAULTS, name)
        if value is None and default is None:
            continue
        number_ok = kind is float and isinstance(value, (int, float)) and not isinstance(value, bool)
        if spec["path"] and isinstance(value, os.PathLike):
            continue
        if not (isinstance(value, kind) and not (kind is int and isinstance(value, bool))) and not number_ok:
            raise ConfigError(f"{where}: {name}={value!r} should be of type {kind.__name__}. {spec['help']}")
        if spec["choices"] and value not in spec["choices"]:
            raise ConfigError(f"{where}: {name}={value!r} is not one of {', '.join(spec['choices'])}.{did_you_mean(value, spec['choices'])}")
        if spec["minimum"] is not None and value < spec["minimum"]:
            raise ConfigError(f"{where}: {name}={value!r} is below its minimum {spec['minimum']}. {spec['help']}")
        if spec["maximum"] is not None and value > spec["maximum"]:
            raise ConfigError(f"{where}: {name}={value!r} is above its maximum {spec['maximum']}. {spec['help']}")
    if values["strategy"] not in strategies and values["strategy"] != "auto":
        strategies.get(values["strategy"])  # raises with close matches
    if values["budget"] is not None:
        from .auto import parse_budget

        parse_budget(values["budget"])
        if values["strategy"] != "auto" and values["adapt"] != "auto":
            raise ConfigError(f"{where}: budget={values['budget']!r} only applies to strategy='auto' or adapt='auto'; "
                              f"drop it")
    if values["freeze"] is not None and values["strategy"] not in ("finetune", "lp_ft"):
        raise ConfigError(f"{where}: freeze={values['freeze']} only applies to strategy 'finetune' or 'lp_ft', "
                          f"not {values['strategy']!r}; drop freeze or change the strategy")
    if values["C"] is not None and values["strategy"] not in ("linear_probe", "lp_ft"):
        raise ConfigError(f"{where}: C={values['C']} only applies to 'linear_probe' or 'lp_ft'; drop it")
    loop_options = [name for name in TRAINING_LOOP_OPTIONS if values[name] != getattr(DEFAULTS, name)]
    if loop_options and values["strategy"] == "linear_probe":
        shown = ", ".join(f"{name}={values[name]!r}" for name in loop_options)
        raise ConfigError(f"{where}: {shown} act(s) in the fine-tuning loop, which linear_probe does not run; use "
                          f"strategy 'finetune', 'lp_ft' or 'scratch', or drop the option")
    if values["regularizer"] is not None and values["strategy"] not in ("finetune", "lp_ft"):
        raise ConfigError(f"{where}: regularizer={values['regularizer']!r} acts while fine-tuning; use strategy "
                          f"'finetune' or 'lp_ft' (with freeze set to train only the top layers), not "
                          f"{values['strategy']!r}")
    if values["adapt"] is not None and values["strategy"] not in ("finetune", "lp_ft", "linear_probe"):
        raise ConfigError(f"{where}: adapt={values['adapt']!r} aligns features while training; use strategy "
                          f"'linear_probe' (on cached frozen features), 'finetune' or 'lp_ft', not "
                          f"{values['strategy']!r}")
    if values["regularizer"] is not None:
        from .regularizers import REGULARIZERS

        for name in regularizer_names(values["regularizer"]):
            REGULARIZERS.get(name)  # raises with close matches
    if values["adapt"] is not None:
        from .adapt import ADAPTERS

        if values["adapt"] != "auto":
            ADAPTERS.get(values["adapt"])
    val_size = values["val_size"]
    if not (0 < val_size < 1 or (val_size >= 1 and float(val_size).is_integer())):
        raise ConfigError(f"{where}: val_size={val_size!r} must be a fraction in (0, 1) or a whole count >= 1")


def as_dict(config: FitConfig) -> dict:
    return dataclasses.asdict(config)


def regularizer_names(value: str) -> list[str]:
    return [name.strip() for name in str(value).split(",") if name.strip()]
