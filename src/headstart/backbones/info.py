"""Pretrained-model metadata as data: one frozen dataclass per model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class SourceScore:
    """A published score of a model on a benchmark of its source task, higher better.

    Two models' scores compare only when ``benchmark`` is the same string: the planner orders such
    models by it on tiny data, where LogME on a few examples is a weaker signal (``planner.ladder``).
    """

    benchmark: str  # what was measured, and on what, e.g. "ImageNet-1k top-1 %"
    value: float
    reference: str  # where the figure is published

    def __str__(self) -> str:
        return f"{self.value:g} ({self.benchmark})"


@dataclass(frozen=True)
class ModelInfo:
    """What a user (and headstart) needs to know about a pretrained backbone before loading it.

    ``pip_packages`` are the exact requirements ``headstart models pull NAME`` installs with
    ``--no-deps``; ``weights_module`` is the importable module that proves they are installed.
    """

    name: str
    modality: str  # "image" | "text" | "features"
    architecture: str  # the model code that runs it, e.g. "timm:tf_efficientnet_lite0"
    license: str
    feature_dim: int
    params_millions: float
    size_mb: float
    description: str
    pip_packages: tuple[str, ...] = ()
    weights_module: str | None = None
    source: str = ""  # where the weights came from (paper / original checkpoint)
    input_size: tuple[int, int, int] | None = None  # (channels, height, width), images only
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    interpolation: str = "bicubic"
    max_length: int | None = None  # tokens, text only
    finetune_lr: float = 1e-4  # learning rate of the last layer group when fine-tuning (AdamW)
    source_score: SourceScore | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)
