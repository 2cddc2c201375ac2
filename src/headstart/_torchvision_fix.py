"""Make ``import timm`` / ``import transformers`` work with a CUDA-built torchvision on CPU torch.

The torchvision wheel that pairs with ``torch==2.13.0`` here is built for CUDA; on a CPU-only torch
its compiled operators fail to register and ``import torchvision`` dies with ``operator
torchvision::nms does not exist``. timm and transformers import torchvision, so they die too.
Declaring the two missing operator schemas before torchvision is imported lets its Python side load
(model definitions and transforms work; ``torchvision.ops.nms`` and ``torchvision.io`` do not, and
headstart uses neither: it reads images with PIL).

:func:`ensure_torchvision_importable` acts only when torchvision's own import fails with exactly
that error, so a user whose torchvision works is left untouched.
"""

from __future__ import annotations

import importlib
import sys

_MISSING_OPERATOR = "operator torchvision::nms does not exist"
_patched = False
_library = None  # kept alive: dropping the Library object would unregister the schemas


def ensure_torchvision_importable() -> bool:
    """Import torchvision, declaring its missing operators first if (and only if) that is needed.

    Returns True when the fix was applied, False when torchvision imported on its own (or is not
    installed at all, which timm and transformers tolerate).
    """
    global _patched, _library
    if _patched or "torchvision" in sys.modules:
        return _patched
    try:
        importlib.import_module("torchvision")
        return False
    except ModuleNotFoundError:
        return False
    except RuntimeError as error:
        if _MISSING_OPERATOR not in str(error):
            raise
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # the failed import left half-initialised modules behind
    _library = torch.library.Library("torchvision", "DEF")
    _library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    importlib.import_module("torchvision")
    _patched = True
    return True
