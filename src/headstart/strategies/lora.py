"""LoRA: fine-tune a transformer backbone through low-rank updates of its attention projections.

Hu et al. 2022, "LoRA: Low-Rank Adaptation of Large Language Models" (ICLR). Each adapted linear
layer keeps its pre-trained weight :math:`W_0 \\in \\mathbb{R}^{d_{out} \\times d_{in}}` frozen and
learns a rank-:math:`r` correction:

.. math:: h = W_0 x + \\tfrac{\\alpha}{r} B A x, \\quad A \\in \\mathbb{R}^{r \\times d_{in}},\\;
          B \\in \\mathbb{R}^{d_{out} \\times r}

``A`` starts random and ``B`` at zero, so training starts exactly at the pre-trained function; only
``A``, ``B`` (``2 r (d_in + d_out)`` numbers per layer, about 1% of a small BERT at ``r=8``) and the
new head train, at ``10 * finetune_lr`` by default: small low-rank updates need a larger step than
full fine-tuning does. With a few labeled examples this is a middle rung between a linear probe
(nothing inside the backbone moves) and fine-tuning (millions of weights move).

The adapters are injected by peft (``inject_adapter_in_model``) into every ``nn.Linear`` whose name
ends in one of :data:`ATTENTION_PROJECTIONS` — the query and value projections of BERT-style
(``query``/``value``), wav2vec2/Whisper-style (``q_proj``/``v_proj``), DistilBERT (``q_lin``/``v_lin``),
MPNet (``attn.q``/``attn.v``) and timm ViT (fused ``qkv``) blocks. A backbone without any (a convnet, an LSTM) is refused with a
clear error rather than silently trained some other way. After training the update is merged,
:math:`W_0 \\leftarrow W_0 + \\frac{\\alpha}{r} B A`, and the peft wrappers are removed: the saved
model is an ordinary backbone of the original shape, so run folders, ``predict`` and reloading work
exactly as after ``finetune``, and inference costs nothing extra.
"""

from __future__ import annotations

import time

from torch import nn

from ..errors import ConfigError
from ..model import TransferModel
from .base import LOOP, FitContext, Strategy, StrategyResult
from .finetune import new_head, run_finetune

# Name endings, matched on whole dotted parts: MPNet's bare ``q``/``v`` only under its ``attn`` module.
ATTENTION_PROJECTIONS = ("query", "value", "q_proj", "v_proj", "q_lin", "v_lin", "qkv", "attn.q", "attn.v")
DROPOUT = 0.1


def lora_targets(module: nn.Module) -> list[str]:
    """Full names of the linear layers LoRA adapts: the attention query/value (or fused qkv) projections."""
    return [name for name, sub in module.named_modules()
            if isinstance(sub, nn.Linear) and any(f".{name}".endswith(f".{end}") for end in ATTENTION_PROJECTIONS)]


def inject_lora(backbone: nn.Module, rank: int) -> list[str]:
    """Wrap the attention projections with rank-``rank`` adapters; freeze every pre-trained weight."""
    targets = lora_targets(backbone)
    if not targets:
        raise ConfigError(f"strategy='lora' adapts attention projections, and backbone {getattr(backbone, 'name', '?')!r} "
                          f"has none (no linear layer named {', '.join(ATTENTION_PROJECTIONS)}); use a transformer "
                          f"backbone (e.g. minilm_l6), or strategy='finetune' with freeze=K for this one")
    from .._torchvision_fix import ensure_torchvision_importable

    ensure_torchvision_importable()  # peft imports transformers, which imports torchvision
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=DROPOUT, target_modules=targets, bias="none")
    inject_adapter_in_model(config, backbone)  # marks only the adapters trainable
    return targets


def merge_lora(backbone: nn.Module) -> int:
    """Fold every adapter into its base weight and put the plain layer back; returns how many."""
    from peft.tuners.lora import LoraLayer

    merged = 0
    for name, module in list(backbone.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(backbone.get_submodule(parent_name) if parent_name else backbone, child, module.get_base_layer())
            merged += 1
    for param in backbone.parameters():
        param.requires_grad_(True)
    return merged


class Lora(Strategy):
    name = "lora"
    accepts = LOOP
    trains = "adapters"
    kept_as_scored = True

    def fit(self, context: FitContext) -> StrategyResult:
        started = time.perf_counter()
        model = TransferModel(context.make_backbone(pretrained=True), context.n_classes)
        new_head(model)
        backbone = model.backbone
        total = sum(p.numel() for p in backbone.parameters())
        rank = context.config.lora_rank
        targets = inject_lora(backbone, rank)
        adapters = sum(p.numel() for p in backbone.parameters() if p.requires_grad)
        context.log(f"lora: rank {rank} adapters on {len(targets)} attention projections: "
                    f"{adapters:,} trainable numbers ({100 * adapters / total:.2f}% of the backbone's {total:,})")
        lr = context.config.lr if context.config.lr is not None else 10 * backbone.info.finetune_lr
        result = run_finetune(context, model, default_freeze=0, prepared=True, lr=lr, head_lr=lr)
        merged = merge_lora(backbone)
        model.eval()
        result.summary.update({"lora_rank": rank, "lora_targets": targets, "lora_merged_layers": merged,
                               "trainable_backbone_numbers": adapters, "seconds": time.perf_counter() - started})
        return result
