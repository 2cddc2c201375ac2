"""Text backbones built on Hugging Face transformers encoders (``hf:ID``, a local model directory,
or the offline zoo's ``minilm_l6`` and ``mpnet_base``).

Features are mean-pooled token states under the attention mask (sentence-transformers' pooling
for all-MiniLM and all-mpnet), without its final L2 normalization: the heads standardize each
feature, and the direction is what equals sentence-transformers' embedding. Layer groups: the embeddings, then each transformer layer in order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import ConfigError
from .base import Backbone, LayerGroup
from .info import ModelInfo

# Where common encoder families keep their list of transformer layers.
_LAYER_PATHS = ("encoder.layer", "encoder.layers", "layers", "transformer.layer", "layer")


def _find_attr(root, dotted: str):
    obj = root
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


class HFTextBackbone(Backbone):
    """A transformers ``AutoModel`` encoder plus its tokenizer."""

    augmentations = ("token_dropout",)  # training-time options it applies; see headstart.augment

    def __init__(self, info: ModelInfo, model, tokenizer, *, pretrained: bool, max_length=None):
        super().__init__(info, pretrained=pretrained)
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = int(max_length or info.max_length or 128)
        self._groups = self._build_groups()

    def _build_groups(self) -> list[LayerGroup]:
        embeddings = getattr(self.model, "embeddings", None)
        layers = next((l for p in _LAYER_PATHS if (l := _find_attr(self.model, p)) is not None), None)
        if embeddings is None or layers is None:
            raise ConfigError(
                f"headstart cannot find the embeddings and transformer layers of {self.info.name} "
                f"({type(self.model).__name__}); it looks for `.embeddings` and one of "
                f"{', '.join(_LAYER_PATHS)}. Use an encoder of the BERT/RoBERTa/MiniLM/MPNet families, "
                f"or open an issue naming the model"
            )
        groups = [LayerGroup("embeddings", [embeddings], embeddings)]
        groups += [LayerGroup(f"layer.{i}", [layer], layer) for i, layer in enumerate(layers)]
        return groups

    def preprocess_signature(self) -> dict:
        return {
            "tokenizer": type(self.tokenizer).__name__,
            "vocab_size": int(self.tokenizer.vocab_size),
            "max_length": self.max_length,
            "lowercase": bool(getattr(self.tokenizer, "do_lower_case", False)),
            "pooling": "masked-mean",
        }

    def preprocess(self, items: Sequence[str], *, train: bool = False) -> dict[str, torch.Tensor]:
        from ..augment import augmentation_of, drop_tokens

        dropout = augmentation_of(self).token_dropout if train else 0.0
        encoded = self.tokenizer(
            list(items),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            return_special_tokens_mask=dropout > 0,
        )
        batch = {k: v for k, v in encoded.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        if dropout > 0:  # training only: drop (mask, or delete) that fraction of the non-special tokens
            batch = drop_tokens(batch, encoded["special_tokens_mask"], dropout,
                                mask_token_id=self.tokenizer.mask_token_id, pad_token_id=self.tokenizer.pad_token_id or 0)
        return batch

    def count_truncated(self, items: Sequence[str]) -> int:
        lengths = self.tokenizer(list(items), truncation=False, add_special_tokens=True)["input_ids"]
        return sum(len(ids) > self.max_length for ids in lengths)

    def input_lengths(self, items: Sequence[str]) -> np.ndarray:
        return np.array([len(ids) for ids in self.tokenizer(list(items), truncation=True, max_length=self.max_length,
                                                            add_special_tokens=True)["input_ids"]])

    def inference_batches(self, items: Sequence[str], batch_size: int) -> list[list[int]]:
        # Every batch is padded to its longest text: sorted by length, a batch wastes little on
        # padding (docs/benchmarks.md, "Why these defaults" of the speed section). A small set is cut
        # in about 8 batches, so that each does not span most of its length range.
        lengths = [len(ids) for ids in self.tokenizer(list(items), truncation=True, max_length=self.max_length,
                                                      add_special_tokens=True)["input_ids"]]
        order = sorted(range(len(items)), key=lengths.__getitem__)
        size = max(1, min(batch_size, math.ceil(len(items) / 8)))
        return [order[start : start + size] for start in range(0, len(order), size)]

    def _pool(self, output, batch) -> torch.Tensor:
        hidden = output[0] if isinstance(output, (tuple, list)) else output
        if hasattr(hidden, "last_hidden_state"):
            hidden = hidden.last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def training_inputs_vary(self) -> bool:
        from ..augment import augmentation_of

        return augmentation_of(self).token_dropout > 0

    def supports_prefix_reuse(self) -> bool:
        return self.tokenizer.padding_side == "right"  # rows are cut at their length, from the left

    def prefix_rows(self, batch, activation):
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        return [(activation[i, :n].clone(), {k: v[i, :n] for k, v in batch.items()}) for i, n in enumerate(lengths)]

    def collate_prefix(self, rows):
        from torch.nn.utils.rnn import pad_sequence

        activation = pad_sequence([states for states, _ in rows], batch_first=True)
        # Padding positions hold zeros (input ids the tokenizer's pad id, so cached inputs equal the tokenizer's
        # own batch): the attention mask keeps them out of every later layer and of the pooling.
        pad_id = self.tokenizer.pad_token_id or 0
        batch = {k: pad_sequence([row[k] for _, row in rows], batch_first=True,
                                 padding_value=pad_id if k == "input_ids" else 0) for k in rows[0][1]}
        return activation, batch

    def _forward_final(self, batch):
        output = self.model(**batch)
        return self._pool(output.last_hidden_state, batch)
