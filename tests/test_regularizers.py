import copy
import math
import re
from pathlib import Path

import pytest
import torch

import headstart.regularizers as regularizers_package
from headstart.backbones import create_backbone
from headstart.errors import ConfigError
from headstart.model import TransferModel
from headstart.regularizers import DELTA, L2SP, REGULARIZERS, BatchSpectralShrinkage, FeatureDistillation
from headstart.terms import StepOutputs
from helpers import tiny_inputs

torch.manual_seed(0)


def _batch(backbone, per_class=2):
    items, labels = tiny_inputs(backbone.modality, per_class=per_class)
    codes = {c: i for i, c in enumerate(sorted(set(labels.tolist())))}
    return backbone.preprocess(list(items)), torch.tensor([codes[c] for c in labels.tolist()])


@pytest.fixture(scope="module")
def image_backbone():
    return create_backbone("efficientnet_lite0", image_size=32)


@pytest.fixture(scope="module")
def text_backbone():
    return create_backbone("minilm_l6")


@pytest.fixture(scope="module")
def image_data(image_backbone):
    return _batch(image_backbone)


@pytest.fixture(scope="module")
def text_data(text_backbone):
    return _batch(text_backbone)


def _model(backbone, freeze: int):
    model = TransferModel(copy.deepcopy(backbone), 2)
    model.backbone.freeze(freeze)
    return model.eval()


@pytest.fixture
def image_model(image_backbone):
    return _model(image_backbone, freeze=5)  # trains blocks.4, blocks.5, head


def _outputs(model, batch, labels) -> StepOutputs:
    features = model.backbone(batch)
    return StepOutputs(batch=batch, features=features, logits=model.head(features), labels=labels, step=0, total_steps=1)


def _group_params(model, name):
    return next(g for g in model.backbone.layer_groups() if g.name == name).parameters()


@torch.no_grad()
def _perturb(params, scale=0.05, seed=0):
    generator = torch.Generator().manual_seed(seed)
    for p in params:
        p.add_(scale * torch.randn(p.shape, generator=generator))


# -- L2-SP ---------------------------------------------------------------------------------------
def test_l2_sp_is_zero_after_setup(image_model, image_data):
    term = L2SP(alpha=0.01, beta=0.0)
    term.setup(image_model)
    assert term(_outputs(image_model, *image_data), image_model).item() == 0.0
    assert term.starting_point_distance().item() == 0.0


def test_l2_sp_equals_hand_computed_value_after_perturbing_one_tensor(image_model, image_data):
    term = L2SP(alpha=0.3, beta=0.02)
    term.setup(image_model)
    param = next(_group_params(image_model, "blocks.5"))
    delta = 0.1 * torch.randn(param.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        param.add_(delta)
    head = sum(p.detach().double().pow(2).sum() for p in image_model.head.parameters())
    expected = 0.5 * 0.3 * delta.double().pow(2).sum() + 0.5 * 0.02 * head
    value = term(_outputs(image_model, *image_data), image_model)
    assert value.item() == pytest.approx(expected.item(), rel=1e-4)


def test_l2_sp_sgd_step_pulls_weights_toward_starting_point(image_model, image_data):
    term = L2SP(alpha=1.0, beta=0.0)
    term.setup(image_model)
    param = next(_group_params(image_model, "blocks.5"))
    start = param.detach().clone()
    _perturb([param], scale=0.1)
    before = (param - start).norm().item()
    optimizer = torch.optim.SGD([param], lr=0.5)
    term(_outputs(image_model, *image_data), image_model).backward()
    optimizer.step()
    after = (param - start).norm().item()
    assert after == pytest.approx(before / 2, rel=1e-4)  # w - lr * alpha (w - w0)


def test_l2_sp_ignores_frozen_groups(image_model):
    term = L2SP()
    term.setup(image_model)
    frozen = {id(p) for p in _group_params(image_model, "stem")}
    assert not frozen & {id(p) for p, _ in term._anchors}


# -- DELTA ---------------------------------------------------------------------------------------
def test_delta_defaults_to_last_three_trainable_groups(image_model):
    term = DELTA(attention="uniform")
    term.setup(image_model)
    assert term.layers == ["blocks.4", "blocks.5", "head"]
    term.teardown(image_model)


def test_delta_is_zero_after_setup_and_positive_after_perturbation(image_model, image_data):
    term = DELTA(attention="uniform")
    term.setup(image_model)
    assert term(_outputs(image_model, *image_data), image_model).item() == 0.0
    _perturb(_group_params(image_model, "blocks.5"))
    assert term(_outputs(image_model, *image_data), image_model).item() > 0.0
    term.teardown(image_model)


def test_delta_hooks_are_removed_after_teardown(image_model, image_data):
    modules = [g.output_module for g in image_model.backbone.layer_groups()] + [image_model.backbone]

    def count():
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in modules)

    baseline = count()
    term = DELTA(attention="uniform")
    term.setup(image_model)
    assert count() == baseline + 1 + len(term.layers)
    term(_outputs(image_model, *image_data), image_model)
    term.teardown(image_model)
    assert count() == baseline
    assert term._reference is None


def test_delta_reuses_the_maps_of_the_loops_forward(image_model, image_data):
    term = DELTA(attention="uniform")
    term.setup(image_model)
    calls = []
    handle = image_model.backbone.register_forward_pre_hook(lambda module, args: calls.append(1))
    outputs = _outputs(image_model, *image_data)  # the loop's forward: one call
    term(outputs, image_model)
    assert len(calls) == 1
    term(outputs, image_model)  # capture already used: the term runs the backbone itself
    assert len(calls) == 2
    handle.remove()
    term.teardown(image_model)


def test_frozen_copies_do_not_inherit_other_terms_hooks(image_model):
    delta, lwf = DELTA(attention="uniform"), FeatureDistillation()
    delta.setup(image_model)
    lwf.setup(image_model)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in lwf._reference.modules())
    delta.teardown(image_model)


def test_delta_loss_drop_attention_is_positive_with_mean_one(image_model, image_data):
    term = DELTA(layers=["blocks.2"], attention="loss_drop")  # 40 channels: 40 zeroed copies of the batch
    term.setup(image_model)
    assert term(_outputs(image_model, *image_data), image_model).item() == 0.0
    attention = term.channel_attention["blocks.2"]
    assert attention.shape == (40,)
    assert torch.isfinite(attention).all() and (attention > 0).all()
    assert attention.mean().item() == pytest.approx(1.0, rel=1e-5)
    term.teardown(image_model)


@pytest.mark.parametrize("modality", ["image", "text"])
def test_delta_taylor_attention_tracks_the_exact_loss_drop(modality, request):
    """The first-order estimate ranks channels like zeroing them one by one does, at a fraction of the cost."""
    from scipy.stats import spearmanr

    backbone, (batch, labels) = request.getfixturevalue(f"{modality}_backbone"), request.getfixturevalue(f"{modality}_data")
    model = _model(backbone, freeze=0)
    layer = backbone.layer_groups()[-2].name
    attention = {}
    for kind in ("taylor", "loss_drop"):
        term = DELTA(layers=[layer], attention=kind)
        term.setup(model)
        term(_outputs(model, batch, labels), model)
        attention[kind] = term.channel_attention[layer]
        term.teardown(model)
    taylor = attention["taylor"]
    assert torch.isfinite(taylor).all() and (taylor > 0).all()
    assert taylor.mean().item() == pytest.approx(1.0, rel=1e-5)
    rho = spearmanr(taylor.numpy(), attention["loss_drop"].numpy()).statistic
    assert rho > 0.3


def test_delta_rejects_a_fully_frozen_backbone(image_backbone):
    model = _model(image_backbone, freeze=len(image_backbone.layer_groups()))
    with pytest.raises(ConfigError, match="trainable"):
        DELTA().setup(model)


# -- BSS -----------------------------------------------------------------------------------------
def test_bss_equals_sum_of_smallest_squared_singular_values():
    features = torch.arange(24, dtype=torch.float64).reshape(6, 4).sin()
    outputs = StepOutputs(batch={}, features=features, logits=torch.zeros(6, 2), labels=torch.zeros(6), step=0, total_steps=1)
    values = torch.linalg.svdvals(features)  # descending
    assert BatchSpectralShrinkage(k=1)(outputs).item() == pytest.approx(values[-1].pow(2).item(), rel=1e-10)
    assert BatchSpectralShrinkage(k=2)(outputs).item() == pytest.approx(values[-2:].pow(2).sum().item(), rel=1e-10)


def test_bss_default_weight_is_the_papers():
    assert BatchSpectralShrinkage().weight == 0.001 and BatchSpectralShrinkage().k == 1


# -- LwF -----------------------------------------------------------------------------------------
def test_lwf_is_zero_after_setup_and_positive_after_perturbation(image_model, image_data):
    terms = [FeatureDistillation(distance="mse"), FeatureDistillation(distance="cosine")]
    for term in terms:
        term.setup(image_model)
        assert term(_outputs(image_model, *image_data), image_model).item() == pytest.approx(0.0, abs=1e-6)
    _perturb(_group_params(image_model, "head"), scale=0.2)
    for term in terms:
        assert term(_outputs(image_model, *image_data), image_model).item() > 1e-6


# -- every regularizer, on real backbones ---------------------------------------------------------
FAST_OPTIONS = {"delta": {"attention": "uniform"}}


def _check_gradients(name, model, batch, labels):
    term = REGULARIZERS.get(name)(**FAST_OPTIONS.get(name, {}))
    term.setup(model)
    trainable = [p for p in model.backbone.parameters() if p.requires_grad]
    frozen = [p for p in model.backbone.parameters() if not p.requires_grad]
    _perturb(trainable, scale=0.02)  # at w = w0 the distance terms have zero gradient
    outputs = _outputs(model, batch, labels)
    outputs.features.retain_grad()
    value = term(outputs, model)
    assert value.dim() == 0 and math.isfinite(value.item())
    (term.weight * value).backward()
    if name == "bss":
        assert outputs.features.grad is not None and outputs.features.grad.abs().sum() > 0
    else:
        grads = [p.grad for p in trainable if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum().item() for g in grads) > 0
    assert all(p.grad is None for p in frozen)
    term.teardown(model)


@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_regularizer_gives_finite_scalar_with_gradients(name, image_model, image_data):
    _check_gradients(name, image_model, *image_data)


@pytest.mark.parametrize("name", ["l2_sp", "delta", "lwf"])
def test_regularizer_works_on_a_second_modality(name, text_backbone, text_data):
    model = _model(text_backbone, freeze=len(text_backbone.layer_groups()) - 2)
    _check_gradients(name, model, *text_data)


def test_registry_holds_the_four_methods_with_paper_defaults():
    assert sorted(REGULARIZERS.names()) == ["bss", "delta", "l2_sp", "lwf"]
    defaults = {name: REGULARIZERS.get(name)().weight for name in REGULARIZERS}
    assert defaults == {"l2_sp": 1.0, "delta": 0.01, "bss": 0.001, "lwf": 1.0}
    assert (L2SP().alpha, L2SP().beta) == (0.01, 0.01)


def test_regularizer_modules_name_no_modality():
    folder = Path(regularizers_package.__file__).parent
    pattern = re.compile(r"image|text|audio|pixel|token|sentence|vision", re.IGNORECASE)
    offenders = {p.name: pattern.findall(p.read_text()) for p in folder.glob("*.py") if pattern.search(p.read_text())}
    assert not offenders
