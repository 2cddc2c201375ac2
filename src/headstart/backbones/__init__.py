"""Pretrained backbones behind one interface (:class:`Backbone`), whatever the modality.

Names: an offline zoo name (``efficientnet_lite0``, ``minilm_l6``, ``whisper_base``…; a Whisper
model with ``:padded`` appended encodes Whisper's full 30-s window instead of the clip), a provider
name (``timm:resnet50``, ``hf:bert-base-uncased``), a local Hugging Face model directory, or
``precomputed`` for inputs that already are feature vectors.
"""

from __future__ import annotations

import dataclasses
import os

from ..errors import ConfigError, UnknownNameError, WeightsNotFoundError, did_you_mean
from .base import Backbone, FreezeReport, LayerGroup
from .info import ModelInfo
from .zoo import ZOO, ZooEntry, map_state_dict_by_order, pull

__all__ = [
    "Backbone", "FreezeReport", "LayerGroup", "ModelInfo", "ZOO", "ZooEntry",
    "DEFAULT_BACKBONES", "backbone_modality", "create_backbone", "list_models", "pull", "resolve_backbone",
]

PROVIDERS = ("timm:", "hf:")
PADDED = ":padded"  # zoo Whisper name suffix: Whisper's own 30-s padded encoding (see backbones.whisper)


def list_models() -> list[dict]:
    """One row per zoo model: name, modality, installed, size, license, parameters, description, and
    the published source-task score the planner orders models of one benchmark by on tiny data."""
    rows = []
    for name in ZOO:
        entry = ZOO.get(name)
        info = entry.info
        rows.append({
            "name": name,
            "modality": info.modality,
            "installed": entry.installed,
            "size_mb": info.size_mb,
            "params_millions": info.params_millions,
            "feature_dim": info.feature_dim,
            "license": info.license,
            "package": " ".join(info.pip_packages),
            "description": info.description,
            "source_score": str(info.source_score) if info.source_score else "",
        })
    return rows


def create_backbone(
    name: str,
    *,
    pretrained: bool = True,
    image_size: int | None = None,
    max_length: int | None = None,
    feature_dim: int | None = None,
) -> Backbone:
    """Build a backbone by name; ``pretrained=False`` gives the same architecture, randomly initialised.

    Never falls back to random weights on its own: missing weights raise
    :class:`~headstart.errors.WeightsNotFoundError` with the way to get them. The backbone's
    ``pretrained_fingerprint`` identifies the weights as loaded, before any training changes them:
    a saved model whose frozen layers are rebuilt from the installed weights is checked against it.
    """
    backbone = _build(name, pretrained=pretrained, image_size=image_size, max_length=max_length,
                      feature_dim=feature_dim)
    backbone.pretrained_fingerprint = backbone.weights_fingerprint() if pretrained else None
    return backbone


def _build(
    name: str,
    *,
    pretrained: bool = True,
    image_size: int | None = None,
    max_length: int | None = None,
    feature_dim: int | None = None,
) -> Backbone:
    """The backbone named ``name``, as loaded (see :func:`create_backbone`)."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"backbone must be a model name string, got {name!r}; see `headstart models list`")
    if name == "precomputed":
        from .precomputed import PrecomputedBackbone

        if feature_dim is None:
            raise ConfigError("backbone='precomputed' needs feature_dim (the number of columns of X)")
        return PrecomputedBackbone(feature_dim)
    if name in ZOO:
        return _create_from_zoo(ZOO.get(name), pretrained, image_size, max_length)
    if name.endswith(PADDED) and name.removesuffix(PADDED) in ZOO:
        return _create_padded_whisper(name, pretrained)
    if name.startswith("timm:"):
        return _create_timm(name.removeprefix("timm:"), pretrained, image_size)
    if name.startswith("hf:"):
        return _create_hf_text(name.removeprefix("hf:"), name, pretrained, max_length)
    if os.path.isdir(name):
        return _create_hf_text(name, name, pretrained, max_length)
    raise UnknownNameError(
        f"unknown backbone {name!r}.{did_you_mean(name, [*ZOO.names(), 'precomputed'])} Use a zoo "
        f"model ({', '.join(ZOO.names())}), 'timm:<timm model name>', 'hf:<Hugging Face model id>', "
        f"a local Hugging Face model directory, or 'precomputed'; `headstart models list` shows the zoo"
    )


def _create_from_zoo(entry: ZooEntry, pretrained, image_size, max_length) -> Backbone:
    info = entry.info
    if info.architecture.startswith("resemblyzer:"):  # audio: resemblyzer's VoiceEncoder, weights in its wheel
        from .ge2e import ResemblyzerBackbone

        entry.require_installed()
        return ResemblyzerBackbone(info, pretrained=pretrained, window_seconds=info.extra.get("window_seconds"))
    if info.architecture == "ct2:whisper":  # audio: a CTranslate2 Whisper model.bin, run as WhisperEncoder
        from .whisper import create_whisper_backbone

        entry.require_installed()  # the sizes come from the file, so a random init needs it too
        return create_whisper_backbone(info, entry.weights(), pretrained=pretrained)
    if info.modality == "image":
        from .timm_backbone import TimmBackbone, create_timm_model

        model = create_timm_model(info.architecture.removeprefix("timm:"), pretrained=False)
        if pretrained:
            entry.require_installed()
            weights = map_state_dict_by_order(entry.weights(), model.state_dict(), info.name)
            model.load_state_dict(weights, strict=True)
        return TimmBackbone(info, model, pretrained=pretrained, image_size=image_size)
    entry.require_installed()  # text: the tokenizer and config live in the same package
    return _load_hf_text(info, entry.weights(), pretrained, max_length)


def _create_padded_whisper(name: str, pretrained: bool) -> Backbone:
    """``whisper_base:padded``: the zoo Whisper model encoding the 30-s window Whisper was trained on
    (slower, measured better at a handful of clips per class: docs/benchmarks.md, audio)."""
    entry = ZOO.get(name.removesuffix(PADDED))
    if entry.info.architecture != "ct2:whisper":
        whispers = [n for n in ZOO.names() if ZOO.get(n).info.architecture == "ct2:whisper"]
        raise ConfigError(f"backbone {name!r}: the {PADDED!r} suffix applies to the zoo's Whisper models only "
                          f"({', '.join(n + PADDED for n in whispers)}); use {entry.info.name!r} as it is")
    from .whisper import create_whisper_backbone

    entry.require_installed()
    info = dataclasses.replace(entry.info, name=name,
                               description=entry.info.description + " (Whisper's padded 30-s encoding)")
    return create_whisper_backbone(info, entry.weights(), pretrained=pretrained, padded=True)


def _create_timm(architecture: str, pretrained: bool, image_size) -> Backbone:
    from .timm_backbone import TimmBackbone, create_timm_model, import_timm

    timm = import_timm()  # never a bare `import timm`: it must follow the torchvision fix
    if not timm.is_model(architecture):
        raise UnknownNameError(
            f"timm has no model {architecture!r}.{did_you_mean(architecture, timm.list_models())} "
            f"`python -c \"import timm; print(timm.list_models('*resnet*'))\"` lists names"
        )
    try:
        model = create_timm_model(architecture, pretrained=pretrained)
    except Exception as error:  # hub errors come in many types (OSError, HTTP, offline)
        raise WeightsNotFoundError(
            f"could not get the pretrained weights of timm:{architecture} ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). timm downloads them from the "
            f"Hugging Face Hub on first use: run once with network access (they are then cached "
            f"under HF_HOME), or use an offline zoo model: {', '.join(ZOO.names())}"
        ) from error
    cfg = model.pretrained_cfg
    info = ModelInfo(
        name=f"timm:{architecture}",
        modality="image",
        architecture=f"timm:{architecture}",
        license=str(cfg.get("license", "see the model card")),
        feature_dim=int(model.num_features),
        params_millions=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        size_mb=0.0,
        description=f"timm model {architecture}",
        source=str(cfg.get("hf_hub_id") or cfg.get("url") or ""),
        input_size=tuple(cfg.get("input_size", (3, 224, 224))),
        mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
        std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),
        interpolation=str(cfg.get("interpolation", "bicubic")),
        finetune_lr=5e-4,
    )
    return TimmBackbone(info, model, pretrained=pretrained, image_size=image_size)


def _create_hf_text(path_or_id: str, name: str, pretrained: bool, max_length) -> Backbone:
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path_or_id)
    except Exception as error:
        raise WeightsNotFoundError(
            f"could not load the Hugging Face model {path_or_id!r} ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). transformers downloads models "
            f"from the Hub on first use: run once with network access, pass a local model directory, "
            f"or use the offline zoo model minilm_l6"
        ) from error
    from .hf_audio import is_audio_config

    if is_audio_config(config):  # wav2vec2, HuBERT, Whisper, AST…: decided by model_type / architectures
        return _load_hf_audio(path_or_id, name, config, pretrained)
    info = ModelInfo(
        name=name,
        modality="text",
        architecture=f"hf:{getattr(config, 'model_type', 'unknown')}",
        license="see the model card",
        feature_dim=int(config.hidden_size),
        params_millions=0.0,
        size_mb=0.0,
        description=f"Hugging Face encoder {path_or_id}",
        source=path_or_id,
        max_length=min(int(getattr(config, "max_position_embeddings", 512)), 256),
        finetune_lr=5e-5,
    )
    return _load_hf_text(info, path_or_id, pretrained, max_length)


def _load_hf_text(info: ModelInfo, path: str, pretrained: bool, max_length) -> Backbone:
    from .._torchvision_fix import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from .hf_text import HFTextBackbone

    from transformers.utils import logging as hf_logging

    tokenizer = AutoTokenizer.from_pretrained(path)
    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a per-tensor "Loading weights" bar on every fit and predict is noise
    try:
        if pretrained:
            model = AutoModel.from_pretrained(path)
        else:
            model = AutoModel.from_config(AutoConfig.from_pretrained(path))
    finally:
        if bar_was_enabled:
            hf_logging.enable_progress_bar()
    if not info.params_millions:
        info = ModelInfo(**{**info.to_dict(), "params_millions": round(sum(p.numel() for p in model.parameters()) / 1e6, 2)})
    return HFTextBackbone(info, model, tokenizer, pretrained=pretrained, max_length=max_length)


def _load_hf_audio(path: str, name: str, config, pretrained: bool) -> Backbone:
    """A transformers audio encoder (``AutoFeatureExtractor`` + ``AutoModel``; Whisper: its encoder)."""
    from .._torchvision_fix import ensure_torchvision_importable

    ensure_torchvision_importable()
    from transformers import AutoFeatureExtractor, AutoModel
    from transformers.utils import logging as hf_logging

    from .hf_audio import HFAudioBackbone

    feature_extractor = AutoFeatureExtractor.from_pretrained(path)
    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(path) if pretrained else AutoModel.from_config(config)
    finally:
        if bar_was_enabled:
            hf_logging.enable_progress_bar()
    if hasattr(model, "get_encoder") and getattr(config, "is_encoder_decoder", False):
        model = model.get_encoder()  # Whisper: the encoder only
    hidden = getattr(config, "d_model", None) or getattr(config, "hidden_size")
    info = ModelInfo(
        name=name,
        modality="audio",
        architecture=f"hf:{getattr(config, 'model_type', 'unknown')}",
        license="see the model card",
        feature_dim=int(hidden),
        params_millions=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        size_mb=0.0,
        description=f"Hugging Face audio encoder {path}",
        source=path,
        finetune_lr=5e-5,
        extra={"sample_rate": int(getattr(feature_extractor, "sampling_rate", 16000))},
    )
    return HFAudioBackbone(info, model, feature_extractor, pretrained=pretrained)


def backbone_modality(name: str) -> str | None:
    """The modality a backbone name takes, without loading weights: a zoo name's own, ``features`` for
    ``precomputed``, ``image`` for ``timm:``, and for ``hf:`` names and local Hugging Face folders
    what their config.json describes (audio encoder or text). None when it cannot be told."""
    if name == "precomputed":
        return "features"
    if name in ZOO:
        return ZOO.get(name).info.modality
    if name.endswith(PADDED) and name.removesuffix(PADDED) in ZOO:
        return ZOO.get(name.removesuffix(PADDED)).info.modality
    if name.startswith("timm:"):
        return "image"
    if name.startswith("hf:") or os.path.isdir(name):
        from transformers import AutoConfig

        from .hf_audio import is_audio_config

        try:
            config = AutoConfig.from_pretrained(name.removeprefix("hf:"))
        except (OSError, ValueError):
            # a hub id whose config is not downloaded: transformers hub models are text unless
            # their config says otherwise; a folder without a readable config.json is not a model
            return "text" if name.startswith("hf:") else None
        return "audio" if is_audio_config(config) else "text"
    return None


# audio: Whisper tiny.en's probe beats the GE2E speaker encoder by 21 points at 5 clips per word and
# costs 0.04 s per clip (docs/benchmarks.md, spoken words); a speaker encoder ignores what is said
DEFAULT_BACKBONES = {"image": "efficientnet_lite0", "text": "minilm_l6", "audio": "whisper_tiny_en",
                     "features": "precomputed"}


def resolve_backbone(name: str, modality: str, source: str) -> str:
    """The backbone a fit on ``modality`` inputs (read from ``source``) uses: "auto" is the modality's
    default; any other name is kept, after checking that it takes that modality."""
    if name == "auto":
        return DEFAULT_BACKBONES[modality]
    expected = backbone_modality(name)
    if expected and expected != modality:
        raise ConfigError(
            f"backbone {name!r} takes {expected} inputs, but {source} holds {modality} inputs; use backbone='auto' "
            f"(picks {DEFAULT_BACKBONES[modality]}) or another {modality} backbone")
    return name
