"""headstart: transfer learning that chooses for you and checks itself against training from scratch."""

from ._version import __version__

__all__ = ["TransferClassifier", "TransferSegmenter", "__version__"]


def __getattr__(name):
    # Imported on first use, so `headstart --help` and `import headstart.errors` stay fast
    # (the estimator pulls in torch and scikit-learn).
    if name == "TransferClassifier":
        from .estimator import TransferClassifier

        return TransferClassifier
    if name == "TransferSegmenter":
        from .segmentation import TransferSegmenter

        return TransferSegmenter
    raise AttributeError(f"module 'headstart' has no attribute {name!r}")
