"""headstart: transfer learning that chooses for you and checks itself against training from scratch."""

__version__ = "0.1.0"

from .estimator import TransferClassifier  # noqa: E402

__all__ = ["TransferClassifier", "__version__"]
