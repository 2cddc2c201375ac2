"""Unsupervised domain adaptation: loss terms that align a labelled source with an unlabeled target.

Every method is a :class:`~headstart.terms.LossTerm` with ``needs_target = True``, built as
``ADAPTERS.get(name)(feature_dim, n_classes, weight=<method default>, **options)`` (or with
:func:`build`, which also checks the option names). They read only the pooled features and logits
in :class:`~headstart.terms.StepOutputs`, so they work both for a head trained on cached frozen
features (put a trainable projection before the head so alignment can move the features) and
for fine-tuning.

================  =====================================  ============================================
name              class                                  options (defaults)
================  =====================================  ============================================
``coral``         :class:`~.coral.CORAL`                 weight=1.0
``mmd``           :class:`~.mmd.MKMMD`                   weight=1.0, multipliers=(.25,.5,1,2,4),
                                                         estimator="biased" | "linear"
``dann``          :class:`~.dann.DANN`                   weight=1.0, hidden_dim=None, gamma=10,
                                                         max_coeff=1.0
``cdan``          :class:`~.cdan.CDAN`                   weight=1.0, entropy=False, randomized=None,
                                                         randomized_dim=1024, hidden_dim=None,
                                                         gamma=10, max_coeff=1.0, seed=0
``cdan_e``        :class:`~.cdan.CDANE`                  as ``cdan``, entropy=True
``mcc``           :class:`~.mcc.MCC`                     weight=1.0, temperature=2.5
``self_training`` :class:`~.self_training.SelfTraining`  weight=1.0, threshold=0.9
================  =====================================  ============================================

Choose a method and its weight without target labels with :mod:`~.validators`.
"""

from __future__ import annotations

import inspect

from ..errors import ConfigError, did_you_mean
from ..registry import Registry
from ._base import AdaptationTerm
from .cdan import CDAN, CDANE
from .coral import CORAL
from .dann import DANN, GradientReversal, grad_reverse, grl_coefficient
from .mcc import MCC
from .mmd import MKMMD
from .self_training import SelfTraining
from .validators import dev, information_maximization, snd

ADAPTERS: Registry[type[AdaptationTerm]] = Registry("adaptation method")
for _method in (CORAL, MKMMD, DANN, CDAN, CDANE, MCC, SelfTraining):
    ADAPTERS.register(_method.name, _method)


def options_of(name: str) -> dict[str, object]:
    """The options a method accepts beyond ``feature_dim, n_classes``, with their defaults."""
    cls = ADAPTERS.get(name)
    params = dict(inspect.signature(cls.__init__).parameters)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):  # cdan_e forwards to cdan
        params = {**dict(inspect.signature(CDAN.__init__).parameters), **params}
        params.pop("entropy", None)
    return {n: p.default for n, p in params.items()
            if n not in ("self", "feature_dim", "n_classes") and p.kind is p.POSITIONAL_OR_KEYWORD}


def build(name: str, feature_dim: int, n_classes: int, weight: float | None = None, **options) -> AdaptationTerm:
    """``ADAPTERS.get(name)(feature_dim, n_classes, weight, **options)`` with the option names checked;
    ``weight=None`` keeps the method's default."""
    cls = ADAPTERS.get(name)
    known = options_of(name)
    for key in options:
        if key not in known:
            raise ConfigError(
                f"adaptation method {name!r} has no option {key!r}.{did_you_mean(key, known)} "
                f"Its options: {', '.join(f'{k}={v!r}' for k, v in known.items())}."
            )
    if weight is not None:
        options["weight"] = weight
    return cls(feature_dim, n_classes, **options)


__all__ = [
    "ADAPTERS", "AdaptationTerm", "CDAN", "CDANE", "CORAL", "DANN", "GradientReversal", "MCC", "MKMMD",
    "SelfTraining", "build", "dev", "grad_reverse", "grl_coefficient", "information_maximization",
    "options_of", "snd",
]
