"""Semantic segmentation by transfer: :class:`TransferSegmenter` (U-Net over a pretrained timm encoder),
its strategies (frozen, finetune, lp_ft, scratch, pixels, auto), data readers and mean IoU."""

from .estimator import TransferSegmenter, is_segmentation_run
from .metrics import iou_scores

__all__ = ["TransferSegmenter", "iou_scores", "is_segmentation_run"]
