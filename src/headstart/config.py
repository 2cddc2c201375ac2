"""The fit configuration: the options a user sets, and the resolved configuration every fit reads.

:class:`FitConfig` is the one list of fit options: the estimator's parameters, their validation and
the CLI's ``headstart fit`` flags and help text are all derived from its fields. ``fit`` checks
them once and resolves them (:func:`headstart.fitting.resolve`) into a frozen
:class:`ResolvedConfig`: the backbone named, the budget in seconds, the device chosen. Strategies,
the trainer and the planner read only that; a variant (a planner rung, a strategy's own learning
rate) is ``dataclasses.replace(config, **changes)``, never an attribute changed in place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from .errors import ConfigError, did_you_mean


def option(default, help: str, *, choices=None, minimum=None, maximum=None, kind=None, path=False, loop=False,
           aliases=(), metavar=None):
    """``path``: a folder option, which also takes a ``pathlib.Path`` (any ``os.PathLike``). ``loop``: the
    option acts inside the fine-tuning loop, so only strategies that run it accept it. ``aliases``: shorter
    ``headstart fit`` flags beside the generated one; ``metavar``: the flag's value in the help text."""
    return field(default=default, metadata={"help": help, "choices": choices, "minimum": minimum,
                                            "maximum": maximum, "kind": kind, "path": path, "loop": loop,
                                            "aliases": aliases, "metavar": metavar})


@dataclass(frozen=True)
class FitConfig:
    backbone: str = option("auto", "Pretrained model: a zoo name (efficientnet_lite0, mobilenetv2_100, minilm_l6), "
                           "timm:NAME, hf:ID, a local model folder, 'precomputed' for feature vectors, or 'auto' "
                           "(the zoo default for the data's modality).", kind=str)
    strategy: str = option("linear_probe", "How to transfer: linear_probe (frozen backbone + logistic head), "
                           "finetune, lp_ft (probe then fine-tune), lora (low-rank adapters in a transformer's attention), scratch (no transfer: random init), contrastive "
                           "(tune the backbone so same-label examples embed close, then a logistic head), or auto "
                           "(rank backbones, try the ladder against a no-transfer baseline, keep the best).", kind=str)
    budget: str | None = option(None, "Time budget of strategy=auto (default 10m) or of adapt=auto's search (default: "
                                "none, every candidate is tried), e.g. '90s', '10m', '1h'.", kind=str)
    freeze: int | None = option(None, "finetune/lp_ft/contrastive: freeze the first K layer groups (0 = train all; default 0).",
                                minimum=0, kind=int)
    lora_rank: int = option(8, "lora: rank r of the low-rank update added to each attention projection (more = more "
                            "trainable numbers).", minimum=1, kind=int)
    contrastive_loss: str | None = option(None, "contrastive: the objective that tunes the backbone: supcon (in-batch "
                                          "supervised contrastive, every same-label example a positive; default) or "
                                          "pairs (SetFit's cosine similarity of every pair, 1 same label, 0 other).",
                                          choices=("supcon", "pairs"), kind=str)
    epochs: int | None = option(None, "Training epochs of the fine-tuning strategies: the most, with early stopping "
                                "(default 10); contrastive trains exactly this many (default 40).", minimum=1, kind=int)
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
    C: float | None = option(None, "linear_probe/lp_ft/contrastive: inverse L2 strength of the logistic head (default: chosen on "
                             "validation).", minimum=0.0, kind=float)
    val_size: float = option(0.2, "Fraction (or count, if >= 1) of labeled data held out for validation, stratified. "
                             "strategy=auto with under 30 examples in some class scores its candidates by 3-fold "
                             "cross-validation instead, and this sets each fold fit's own validation part.",
                             minimum=0.0, kind=float)
    image_size: int | None = option(None, "Resize images to this many pixels square (default: the backbone's, "
                                    "e.g. 224; smaller is faster).", minimum=16, kind=int)
    max_length: int | None = option(None, "Truncate texts to this many tokens (default: the backbone's).",
                                    minimum=8, kind=int)
    sample_rate: int | None = option(None, "Sample rate in Hz of waveform arrays given to fit and predict (audio files "
                                     "carry their own): they are resampled to 16 kHz, and equal-length float rows are "
                                     "read as audio clips, not feature vectors (default: arrays read as audio are "
                                     "taken to be 16 kHz).", minimum=1, kind=int)
    train_bn: bool = option(False, "finetune/lp_ft: update BatchNorm running statistics while training (off: small "
                            "batches of a new domain overwrite the pretrained statistics).", kind=bool)
    window: str | None = option(None, "Grey-level window of DICOM files and 16-bit PNG/TIFF images: 'C,W' (e.g. "
                                "'40,400': centre 40, width >= 1, in the file's units, Hounsfield units for CT), or "
                                "'minmax' (each image's own range). Default: a DICOM file's own window (else its "
                                "range); 16-bit images divided by 257. Python also takes a (centre, width) pair.",
                                kind=str, metavar="C,W")
    augment: bool = option(True, "Augment training images (mild random crops and colour jitter).", kind=bool)
    randaugment: bool = option(False, "Training images also go through RandAugment (timm's rand-m9-mstd0.5: two random "
                               "operations of magnitude about 9 per image), replacing the colour jitter. Image "
                               "backbones; fine-tuning strategies.", kind=bool, loop=True)
    mixup: float = option(0.0, "mixup alpha: train on blends of two images and of their labels, the blend weight drawn "
                          "from Beta(alpha, alpha) per batch (e.g. 0.2; 0 = off). Image backbones; fine-tuning "
                          "strategies.", minimum=0.0, kind=float, loop=True)
    cutmix: float = option(0.0, "CutMix alpha: paste a box of another image, labels mixed by its area (e.g. 1.0; 0 = "
                           "off). With mixup too, each batch uses one of the two at random. Image backbones; "
                           "fine-tuning strategies.", minimum=0.0, kind=float, loop=True)
    token_dropout: float = option(0.0, "Replace this fraction of each training text's tokens with [MASK] (deleted when "
                                  "the tokenizer has no mask token); special tokens are kept (0 = off). Text "
                                  "backbones; fine-tuning strategies.", minimum=0.0, maximum=0.5, kind=float, loop=True)
    label_smoothing: float = option(0.0, "Train towards targets that give this much probability mass to the other "
                                    "classes, spread evenly (e.g. 0.1; 0 = off). Fine-tuning strategies.",
                                    minimum=0.0, maximum=0.5, kind=float, loop=True)
    average_checkpoints: int = option(0, "At the end of training, average the weights of the K best epochs by "
                                      "validation accuracy and keep the average if it scores at least as well as "
                                      "the best epoch on validation (0 or 1 = off). Fine-tuning strategies.",
                                      minimum=0, kind=int, loop=True)
    cache_dir: str | None = option(None, "Folder of the feature cache (default: $HEADSTART_CACHE or "
                                   "~/.cache/headstart); 'none' keeps features in memory only.", kind=str, path=True)
    checkpoint_dir: str | None = option(None, "Save a training checkpoint here after every epoch; a fit started "
                                        "again with the same data and options resumes from it.", kind=str, path=True)
    ray_address: str | None = option(None, "strategy=auto / adapt=auto: score the candidates in parallel as Ray tasks "
                                     "(pip install headstart[ray]): 'local' (a Ray cluster started on this machine's "
                                     "CPUs for the fit), 'auto' (the cluster this machine joined with `ray start`) or "
                                     "'ray://HOST:PORT' (a remote cluster's client port); default: one after another.",
                                     kind=str, aliases=("--ray",), metavar="ADDRESS")
    device: str = option("auto", "auto, cpu, or cuda.", choices=("auto", "cpu", "cuda"), kind=str)
    random_state: int = option(0, "Seed of the split, initialisation and data order.", minimum=0, kind=int)
    verbose: int = option(1, "0 silent; 1 progress bars, a line per training epoch, and summaries.", minimum=0, kind=int)


DEFAULTS = FitConfig()
# Options of more than one type, checked by their own parser: window is 'C,W', 'minmax' or a (centre, width) pair.
PARSED_OPTIONS = ("window",)
OPTION_NAMES = tuple(f.name for f in fields(FitConfig))
# Options that act inside the fine-tuning loop: only strategies that run it accept them.
LOOP_OPTIONS = tuple(f.name for f in fields(FitConfig) if f.metadata["loop"])


@dataclass(frozen=True)
class ResolvedConfig(FitConfig):
    """Every option checked and resolved, plus what a fit derives from the data and the strategy.

    ``backbone`` is a concrete name (never "auto") and ``device`` "cpu" or "cuda"; the fields below
    are not user options. A fit's own values (its batch size from its training rows, a strategy's
    learning rates) are set with ``dataclasses.replace`` on the way down."""

    modality: str = ""  # "image" | "text" | "audio" | "features"
    backbone_choices: tuple[str, ...] = ()  # what strategy="auto" ranks: the zoo's installed models, or the one named
    budget_seconds: float | None = None  # the parsed budget of strategy="auto" or adapt="auto"
    feature_dim: int | None = None  # width of precomputed feature vectors
    head_lr: float | None = None  # the new head's learning rate (set by the strategy)
    warmup_fraction: float = 0.1  # of the training steps, at a linearly rising learning rate
    precision: str = "no"  # Accelerate's mixed_precision: "no" | "fp16" | "bf16"

    @property
    def seed(self) -> int:
        return self.random_state

    @property
    def progress(self) -> bool:
        return self.verbose > 0

    def options(self) -> dict:
        """The user-facing options only (what ``get_params`` would return)."""
        return {name: getattr(self, name) for name in OPTION_NAMES}


def check_values(values: dict, where: str = "TransferClassifier") -> None:
    """Raise ConfigError naming the parameter, the value and the accepted type, range or choices;
    the checks of a single option. Which strategy accepts which option: :func:`headstart.fitting.check_options`."""
    known = {f.name: f for f in fields(FitConfig)}
    for name, value in values.items():
        spec = known[name].metadata
        kind, default = spec["kind"], getattr(DEFAULTS, name)
        if value is None and default is None:
            continue
        number_ok = kind is float and isinstance(value, (int, float)) and not isinstance(value, bool)
        if spec["path"] and isinstance(value, os.PathLike):
            continue
        if name in PARSED_OPTIONS:  # checked by their own parser (headstart.fitting.check_options)
            continue
        if not (isinstance(value, kind) and not (kind is int and isinstance(value, bool))) and not number_ok:
            raise ConfigError(f"{where}: {name}={value!r} should be of type {kind.__name__}. {spec['help']}")
        if spec["choices"] and value not in spec["choices"]:
            raise ConfigError(f"{where}: {name}={value!r} is not one of {', '.join(spec['choices'])}.{did_you_mean(value, spec['choices'])}")
        if spec["minimum"] is not None and value < spec["minimum"]:
            raise ConfigError(f"{where}: {name}={value!r} is below its minimum {spec['minimum']}. {spec['help']}")
        if spec["maximum"] is not None and value > spec["maximum"]:
            raise ConfigError(f"{where}: {name}={value!r} is above its maximum {spec['maximum']}. {spec['help']}")
    if values.get("ray_address") is not None:
        check_ray_address(values, where)


def check_ray_address(values: dict, where: str = "TransferClassifier") -> None:
    """A Ray address is 'local', 'auto' or 'ray://HOST:PORT', and only the searches run candidates on it."""
    address = values["ray_address"]
    if address not in ("local", "auto") and not (address.startswith("ray://") and len(address) > len("ray://")):
        raise ConfigError(f"{where}: ray_address={address!r} is not a Ray address; use 'local' (a Ray cluster "
                          f"started on this machine for the fit), 'auto' (the cluster this machine joined with "
                          f"`ray start`) or 'ray://HOST:PORT' (a remote cluster's client port), or None to run the "
                          f"candidates one after another")
    if "strategy" in values and values["strategy"] != "auto" and values.get("adapt") != "auto":
        raise ConfigError(f"{where}: ray_address={address!r} runs the candidates of strategy='auto' or adapt='auto' "
                          f"in parallel, and strategy={values['strategy']!r} fits one model; drop ray_address or "
                          f"use strategy='auto'")


def check_val_size(val_size, where: str = "TransferClassifier") -> None:
    if not (0 < val_size < 1 or (val_size >= 1 and float(val_size).is_integer())):
        raise ConfigError(f"{where}: val_size={val_size!r} must be a fraction in (0, 1) or a whole count >= 1")


def parse_budget(budget) -> float:
    """'10m', '90s', '1h', or a number of seconds."""
    if isinstance(budget, (int, float)) and not isinstance(budget, bool):
        return float(budget)
    text = str(budget).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise ConfigError(f"budget={budget!r} is not a duration; write e.g. '90s', '10m' or '1h'") from None


def regularizer_names(value: str) -> list[str]:
    return [name.strip() for name in str(value).split(",") if name.strip()]
