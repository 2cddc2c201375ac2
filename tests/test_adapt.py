"""Domain adaptation terms (headstart.adapt) and the unsupervised validators, on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from headstart.adapt import ADAPTERS, build, dev, grad_reverse, grl_coefficient, information_maximization, snd
from headstart.adapt.cdan import CDAN, entropy_weights
from headstart.adapt.coral import coral_loss, covariance
from headstart.adapt.dann import DANN, domain_bce
from headstart.adapt.mcc import mcc_loss
from headstart.adapt.mmd import mk_mmd
from headstart.adapt.self_training import self_training_loss
from headstart.errors import ConfigError, DataError, UnknownNameError
from headstart.terms import LossTerm, StepOutputs

ALIGNING = ["coral", "mmd", "dann", "cdan", "cdan_e"]


def _outputs(fs, ft, gs=None, gt=None, step=0, total=100, labels=None):
    k = gs.shape[1] if gs is not None else 2
    return StepOutputs(
        batch={}, features=fs, logits=gs if gs is not None else torch.zeros(fs.shape[0], k),
        labels=labels if labels is not None else torch.zeros(fs.shape[0], dtype=torch.long),
        step=step, total_steps=total, target_features=ft,
        target_logits=gt if gt is not None else torch.zeros(ft.shape[0], k),
    )


# -- registry and construction ----------------------------------------------------------------

def test_registry_lists_every_method():
    assert set(ADAPTERS.names()) == {"coral", "mmd", "dann", "cdan", "cdan_e", "mcc", "self_training"}
    with pytest.raises(UnknownNameError, match="Did you mean 'dann'"):
        ADAPTERS.get("dan")


@pytest.mark.parametrize("name", ADAPTERS.names())
def test_method_is_a_loss_term_that_needs_target(name):
    term = ADAPTERS.get(name)(8, 3)
    assert isinstance(term, LossTerm)
    assert term.needs_target is True
    assert term.name == name
    assert term.weight == 1.0
    assert ADAPTERS.get(name)(8, 3, weight=0.25).weight == 0.25


@pytest.mark.parametrize("name", ADAPTERS.names())
def test_method_returns_finite_scalar_with_feature_gradient(name):
    torch.manual_seed(0)
    d, k = 6, 3
    fs = torch.randn(10, d, requires_grad=True)
    ft = (torch.randn(12, d) + 1.0).requires_grad_(True)
    head = nn.Linear(d, k)
    with torch.no_grad():
        head.weight.mul_(10.0)  # confident predictions, so self-training has pseudo-labels
    term = ADAPTERS.get(name)(d, k)
    loss = term(_outputs(fs, ft, head(fs), head(ft), step=50), nn.Identity())
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [g for g in (fs.grad, ft.grad) if g is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", ADAPTERS.names())
def test_method_without_target_batch_raises(name):
    term = ADAPTERS.get(name)(4, 2)
    out = _outputs(torch.randn(4, 4), torch.randn(4, 4))
    out.target_features, out.target_logits = None, None
    with pytest.raises(DataError, match="target"):
        term(out, nn.Identity())


def test_method_wrong_feature_width_raises():
    with pytest.raises(DataError, match=r"\(b, 5\)"):
        ADAPTERS.get("coral")(5, 2)(_outputs(torch.randn(4, 4), torch.randn(4, 4)), nn.Identity())


def test_build_checks_option_names_and_values():
    assert build("mcc", 4, 2, temperature=1.0).temperature == 1.0
    assert build("dann", 4, 2, weight=0.1).weight == 0.1
    with pytest.raises(ConfigError, match="Did you mean 'temperature'"):
        build("mcc", 4, 2, temprature=1.0)
    with pytest.raises(ConfigError, match="weight"):
        ADAPTERS.get("coral")(4, 2, weight=-1.0)
    with pytest.raises(ConfigError, match="feature_dim"):
        ADAPTERS.get("coral")(0, 2)
    with pytest.raises(ConfigError, match="threshold"):
        build("self_training", 4, 2, threshold=1.5)
    with pytest.raises(ConfigError, match="estimator"):
        build("mmd", 4, 2, estimator="quadratic")
    with pytest.raises(ConfigError, match="entropy"):
        build("cdan_e", 4, 2, entropy=False)


# -- CORAL --------------------------------------------------------------------------------------

def test_coral_zero_for_identical_covariances():
    torch.manual_seed(0)
    xs = torch.randn(32, 5)
    assert coral_loss(xs, xs + 3.0).item() == pytest.approx(0.0, abs=1e-10)  # a mean shift only
    assert torch.allclose(covariance(xs), torch.from_numpy(np.cov(xs.numpy(), rowvar=False)).float(), atol=1e-5)


def test_coral_matches_hand_computed_2d_value():
    xs = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])  # C_s = 4/3 I
    xt = torch.tensor([[-1.0, -1.0], [1.0, 1.0]])                         # C_t = [[2, 2], [2, 2]]
    # ||C_s - C_t||_F^2 = 2 (2/3)^2 + 2 * 2^2 = 80/9;  / (4 d^2 = 16) = 5/9
    term = ADAPTERS.get("coral")(2, 2)
    assert term(_outputs(xs, xt), nn.Identity()).item() == pytest.approx(5 / 9, rel=1e-6)


def test_coral_batch_of_one_raises():
    with pytest.raises(DataError, match="at least 2"):
        ADAPTERS.get("coral")(3, 2)(_outputs(torch.randn(1, 3), torch.randn(4, 3)), nn.Identity())


# -- MMD ----------------------------------------------------------------------------------------

def test_mmd_zero_for_same_sample_and_grows_with_mean_shift():
    torch.manual_seed(0)
    x = torch.randn(40, 4)
    y = torch.randn(40, 4)
    assert mk_mmd(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)
    values = [mk_mmd(x, y + shift).item() for shift in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in zip(values, values[1:])), values
    assert values[0] >= 0.0
    linear = [mk_mmd(x, y + shift, estimator="linear").item() for shift in (0.0, 4.0)]
    assert linear[1] > linear[0] + 0.1


def test_mmd_allows_unequal_batch_sizes():
    term = ADAPTERS.get("mmd")(3, 2)
    assert torch.isfinite(term(_outputs(torch.randn(5, 3), torch.randn(9, 3)), nn.Identity()))


# -- gradient reversal and DANN -----------------------------------------------------------------

def test_gradient_reversal_flips_and_scales_gradient():
    x = torch.randn(4, 3, requires_grad=True)
    c = torch.randn(4, 3)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)
    (y * c).sum().backward()
    assert torch.allclose(x.grad, -0.3 * c)


def test_dann_lambda_schedule_from_zero_to_one():
    assert grl_coefficient(0, 1000) == 0.0
    assert grl_coefficient(1000, 1000) == pytest.approx(1.0, abs=1e-3)
    assert grl_coefficient(500, 1000) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    steps = [grl_coefficient(s, 100) for s in range(0, 101, 10)]
    assert steps == sorted(steps)


def test_dann_feature_gradient_is_reversed_discriminator_gradient_times_lambda():
    torch.manual_seed(0)
    term = DANN(4, 2)
    fs, ft = torch.randn(6, 4, requires_grad=True), torch.randn(5, 4, requires_grad=True)
    term(_outputs(fs, ft, step=30, total=100), nn.Identity()).backward()
    lam = grl_coefficient(30, 100)
    assert term.last_coeff == pytest.approx(lam)
    xs, xt = fs.detach().clone().requires_grad_(True), ft.detach().clone().requires_grad_(True)
    logits = term.discriminator(torch.cat([xs, xt]))
    domain_bce(logits[:6], logits[6:]).backward()
    assert torch.allclose(fs.grad, -lam * xs.grad, atol=1e-6)
    assert torch.allclose(ft.grad, -lam * xt.grad, atol=1e-6)


def test_dann_at_step_zero_leaves_features_untouched():
    fs, ft = torch.randn(6, 4, requires_grad=True), torch.randn(5, 4, requires_grad=True)
    DANN(4, 2)(_outputs(fs, ft, step=0), nn.Identity()).backward()
    assert fs.grad.abs().max() == 0 and ft.grad.abs().max() == 0


@pytest.mark.parametrize("name", ["dann", "cdan", "cdan_e"])
def test_adversarial_resumed_term_continues_schedule(name):
    torch.manual_seed(1)
    fs, ft, gs, gt = torch.randn(6, 4), torch.randn(5, 4), torch.randn(6, 3), torch.randn(5, 3)
    first = ADAPTERS.get(name)(4, 3)
    loss_first = first(_outputs(fs, ft, gs, gt, step=37, total=100), nn.Identity())
    torch.manual_seed(2)  # a fresh term with other initial weights, then restored
    resumed = ADAPTERS.get(name)(4, 3)
    resumed.load_state_dict(first.state_dict())
    loss_resumed = resumed(_outputs(fs, ft, gs, gt, step=37, total=100), nn.Identity())
    assert resumed.last_coeff == first.last_coeff == pytest.approx(grl_coefficient(37, 100))
    assert torch.allclose(loss_first, loss_resumed)


# -- CDAN ---------------------------------------------------------------------------------------

def test_cdan_e_weights_lie_between_one_and_two():
    torch.manual_seed(0)
    probs = F.softmax(torch.randn(50, 5) * 3, dim=1)
    w = entropy_weights(probs)
    assert (w >= 1.0).all() and (w <= 2.0).all()
    assert entropy_weights(torch.eye(5)).allclose(torch.full((5,), 2.0), atol=1e-5)
    assert entropy_weights(torch.full((1, 5), 0.2)).item() == pytest.approx(1.2, abs=1e-5)  # 1 + 1/k


def test_cdan_uses_randomized_map_only_for_large_inputs():
    small, large = CDAN(16, 4), CDAN(1024, 5)
    assert not small.randomized and small.discriminator[0].in_features == 64
    assert large.randomized and large.discriminator[0].in_features == 1024
    assert {"rf", "rg"} <= set(large.state_dict())  # the random matrices are saved for resume
    f, g = torch.randn(3, 16), F.softmax(torch.randn(3, 4), dim=1)
    assert torch.allclose(small.condition(f, g)[1].view(4, 16), torch.outer(g[1], f[1]))


# -- MCC and self-training -------------------------------------------------------------------------

def test_mcc_lower_for_confident_diagonal_than_uniform_predictions():
    confident = 20.0 * torch.eye(4).repeat(3, 1)         # each class predicted confidently, 12 examples
    uniform = torch.zeros(12, 4)
    low, high = mcc_loss(confident, 2.5).item(), mcc_loss(uniform, 2.5).item()
    assert low < 0.01
    assert high == pytest.approx(1 - 1 / 4, abs=1e-6)  # every row of the confusion matrix is uniform
    assert low < high


def test_self_training_zero_when_no_prediction_passes_threshold():
    logits = torch.zeros(8, 3, requires_grad=True)      # max probability 1/3 < 0.9
    loss = self_training_loss(logits, 0.9)
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad.abs().sum() == 0


def test_self_training_averages_over_all_target_examples():
    logits = torch.tensor([[5.0, 0.0], [0.0, 0.0], [0.0, 6.0], [0.1, 0.0]])
    expected = (F.cross_entropy(logits[0:1], torch.tensor([0])) + F.cross_entropy(logits[2:3], torch.tensor([1]))) / 4
    assert self_training_loss(logits, 0.9).item() == pytest.approx(expected.item(), rel=1e-6)


# -- end to end on features, without the training loop ------------------------------------------------

def _domains(seed: int, d: int = 4, n_per_class: int = 40, angle: float = 1.0):
    """Two Gaussian blobs (one per class) in d dimensions; the target is the same, rotated by
    ``angle`` radians in the plane of the class axis, so alignment has something to fix."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.zeros(2, d)
    means[0, 0], means[1, 0] = -2.0, 2.0
    y = torch.arange(2).repeat_interleave(n_per_class)
    xs = means[y] + 0.7 * torch.randn(2 * n_per_class, d, generator=gen)
    xt = means[y] + 0.7 * torch.randn(2 * n_per_class, d, generator=gen)
    rotation = torch.eye(d)
    c, s = math.cos(angle), math.sin(angle)
    rotation[:2, :2] = torch.tensor([[c, -s], [s, c]])
    return xs, y, xt @ rotation.T, y.clone()


def _fit(name: str | None, seed: int = 0, warmup: int = 50, steps: int = 100) -> float:
    """Target accuracy of projection + linear head trained on source features with Adam: ``warmup``
    source-only steps, then ``steps`` with the term added (``name=None``: source only throughout)."""
    d = 4
    xs, ys, xt, yt = _domains(seed, d)
    torch.manual_seed(seed)
    projection, head = nn.Linear(d, d), nn.Linear(d, 2)  # the projection stands in for a learned backbone
    params = list(projection.parameters()) + list(head.parameters())
    term = None
    if name is not None:
        term = ADAPTERS.get(name)(d, 2)
        params += list(term.parameters())
    opt = torch.optim.Adam(params, lr=0.02)
    for step in range(warmup + steps):
        fs, ft = projection(xs), projection(xt)
        gs, gt = head(fs), head(ft)
        loss = F.cross_entropy(gs, ys)
        if term is not None and step >= warmup:
            out = StepOutputs(batch={}, features=fs, logits=gs, labels=ys, step=step - warmup, total_steps=steps,
                              target_features=ft, target_logits=gt)
            term_loss = term(out, projection)
            assert torch.isfinite(term_loss)
            loss = loss + term.weight * term_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (head(projection(xt)).argmax(1) == yt).float().mean().item()


@pytest.fixture(scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead on the 2-core machine
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def source_only_accuracy(one_thread):
    return _fit(None)


@pytest.mark.parametrize("name", ADAPTERS.names())
def test_method_end_to_end_no_worse_than_source_only(name, source_only_accuracy):
    adapted = _fit(name)
    # a smoke check: aligning methods must not hurt; the entropy-style ones (mcc, self-training)
    # can amplify early mistakes under larger shifts, so they get a looser bound
    tolerance = 0.05 if name in ALIGNING else 0.1
    assert adapted >= source_only_accuracy - tolerance, (name, adapted, source_only_accuracy)


# -- validators -----------------------------------------------------------------------------------

def test_information_maximization_prefers_confident_diverse_predictions():
    k = 4
    diverse = np.eye(k)[np.arange(40) % k] * 0.96 + 0.01
    collapsed = np.eye(k)[np.zeros(40, dtype=int)] * 0.96 + 0.01
    uniform = np.full((40, k), 1 / k)
    im_diverse = information_maximization(diverse)
    assert im_diverse > information_maximization(collapsed) + 1.0
    assert information_maximization(np.eye(k)[np.arange(40) % k]) == pytest.approx(math.log(k))
    assert information_maximization(uniform) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(DataError, match="softmax"):
        information_maximization(np.random.default_rng(0).normal(size=(5, k)))


def test_snd_higher_for_clustered_than_scattered_predictions():
    rng = np.random.default_rng(0)
    k, n = 4, 80
    # well-clustered target predictions: near one-hot, each point has many close neighbours
    clustered = np.eye(k)[rng.integers(0, k, n)] + 0.02 * rng.random((n, k))
    clustered /= clustered.sum(1, keepdims=True)
    scattered = rng.dirichlet(np.ones(k), size=n)  # spread over the simplex: sparse neighbourhoods
    assert snd(clustered) > snd(scattered)
    assert snd(np.ones((10, k)) / k) == pytest.approx(math.log(9))  # maximal: every neighbour the same
    with pytest.raises(DataError, match="n >= 2"):
        snd(np.ones((1, k)))


def test_snd_matches_skada_if_installed():
    metrics = pytest.importorskip("skada.metrics")
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4) * 0.3, size=30)

    class Fixed:  # an estimator whose inputs are its predictions
        def predict_proba(self, X, sample_domain=None, **kwargs):
            return X

    X = np.concatenate([probs, probs])
    y = np.concatenate([np.zeros(30, dtype=int), -np.ones(30, dtype=int)])
    domain = np.concatenate([np.ones(30, dtype=int), -2 * np.ones(30, dtype=int)])
    expected = metrics.SoftNeighborhoodDensity(T=0.05)(Fixed(), X, y, sample_domain=domain)
    assert snd(probs, temperature=0.05) == pytest.approx(expected, rel=1e-9)


def test_dev_equals_mean_loss_when_domains_identically_distributed():
    rng = np.random.default_rng(0)
    fv, ft = rng.normal(size=(400, 5)), rng.normal(size=(400, 5))
    losses = rng.exponential(size=400)
    assert dev(fv, losses, ft) == pytest.approx(losses.mean(), abs=0.05 * losses.mean())


def test_dev_upweights_source_examples_that_look_like_target():
    rng = np.random.default_rng(0)
    fv = rng.normal(size=(400, 2))
    ft = rng.normal(size=(400, 2)) + np.array([1.5, 0.0])
    losses = (fv[:, 0] > 0.5).astype(float) * 2.0 + 0.1  # errors where the target lies
    assert dev(fv, losses, ft) > losses.mean() + 0.3
    with pytest.raises(DataError, match="per-example losses"):
        dev(fv, losses[:10], ft)



def test_effective_sample_size_spans_one_to_n_and_collapses_for_separable_domains():
    from headstart.adapt.validators import effective_sample_size, importance_weights

    assert effective_sample_size(np.ones(50)) == pytest.approx(50)
    assert effective_sample_size(np.r_[1.0, np.zeros(49)]) == pytest.approx(1)
    assert effective_sample_size(np.r_[np.ones(10), 3 * np.ones(10)]) == pytest.approx(16)  # (40)^2 / 100
    rng = np.random.default_rng(0)
    fv, ft = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    assert effective_sample_size(importance_weights(fv, ft)) > 200  # same distribution: nearly every row counts
    far = importance_weights(fv, ft + np.array([8.0, 0.0, 0.0]))  # separable: a few rows carry DEV
    assert effective_sample_size(far) < 0.05 * len(far)
    with pytest.raises(DataError, match="non-negative finite weights, got 2 weights with min -1"):
        effective_sample_size(np.array([1.0, -1.0]))

# -- on cached frozen features: strategy="linear_probe", adapt=... ---------------------------------

def test_frozen_projection_and_head_fold_into_one_linear_head():
    from headstart.adapt.frozen import ProjectedFeatures

    torch.manual_seed(0)
    x = torch.randn(7, 12) * 3 + 1
    mean, scale = x.mean(0).numpy(), x.std(0).numpy()
    adapter = ProjectedFeatures(12, 5, mean, scale)
    head = nn.Linear(5, 3)
    weight, bias = adapter.folded(head)
    assert weight.shape == (3, 12) and bias.shape == (3,)
    torch.testing.assert_close(x @ weight.T + bias, head(adapter({"features": x})), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ADAPTERS.names())
def test_every_method_adapts_on_cached_frozen_features_and_reloads(name, tmp_path):
    from headstart import TransferClassifier

    from helpers import tiny_texts

    X, y = tiny_texts(8)
    target = [text.upper() + "!!" for text in X]  # a shifted domain: same content, other surface form
    clf = TransferClassifier(strategy="linear_probe", adapt=name, epochs=2, cache_dir=str(tmp_path / "cache"),
                             verbose=0).fit(X, y, X_target=target)
    # 384-d sentence features projected onto the principal directions of the 28 source + target rows
    assert clf.fit_summary_["adapted_on"].startswith("cached frozen features: projection 384 -> 28,")
    assert f"{name} (weight" in clf.fit_summary_["loss_terms"][0]
    probabilities = clf.predict_proba(target)
    clf.save(tmp_path / "run")
    np.testing.assert_array_equal(TransferClassifier.load(tmp_path / "run").predict_proba(target), probabilities)


def test_frozen_coral_moves_target_accuracy_on_a_rotated_domain():
    """Precomputed features, target rotated by 1 radian: CORAL on the learned projection must not lose to
    the plain linear probe on the target, and the saved head is still one linear map on raw features."""
    from headstart import TransferClassifier

    xs, ys, xt, yt = _domains(0, d=8, n_per_class=60)
    labels, target_labels = ys.numpy().astype(str), yt.numpy().astype(str)
    plain = TransferClassifier(strategy="linear_probe", backbone="precomputed", verbose=0).fit(xs.numpy(), labels)
    adapted = TransferClassifier(strategy="linear_probe", backbone="precomputed", adapt="coral", epochs=30,
                                 verbose=0).fit(xs.numpy(), labels, X_target=xt.numpy())
    assert adapted.score(xt.numpy(), target_labels) >= plain.score(xt.numpy(), target_labels) - 0.05
    assert adapted.model_.head.weight.shape == (2, 8)



def test_frozen_adaptation_starts_at_the_linear_probes_C_on_pooled_statistics(monkeypatch):
    """The head starts at the C the linear probe chooses on the same validation rows (not C = 1), and the
    projection standardises with the source training rows and the target rows together."""
    from headstart import TransferClassifier
    from headstart import heads
    from headstart.adapt import frozen

    xs, ys, xt, _ = _domains(0, d=8, n_per_class=60)
    xt = xt * 3 + 5  # the target sits elsewhere and on another scale
    chosen, seen = [], {}
    real_choose = heads.choose_C
    monkeypatch.setattr(heads, "choose_C", lambda *a: chosen.append(real_choose(*a)[0]) or real_choose(*a))
    real_init = frozen.ProjectedFeatures.__init__

    def spy(self, feature_dim, projection_dim, mean, scale):
        seen.update(mean=mean, scale=scale)
        real_init(self, feature_dim, projection_dim, mean, scale)

    monkeypatch.setattr(frozen.ProjectedFeatures, "__init__", spy)
    clf = TransferClassifier(strategy="linear_probe", backbone="precomputed", adapt="coral", epochs=1,
                             verbose=0).fit(xs.numpy(), ys.numpy().astype(str), X_target=xt.numpy())
    assert len(chosen) == 1 and clf.fit_summary_["starting_C"] == chosen[0]
    # pooled over the source training rows and the 120 target rows: between the two domains' means
    assert np.all(seen["mean"] > xs.numpy().mean(0) + 2) and np.all(seen["mean"] < xt.numpy().mean(0))


def test_frozen_adaptation_keeps_the_users_C(monkeypatch):
    from headstart import TransferClassifier, heads

    xs, ys, xt, _ = _domains(1, d=8, n_per_class=30)
    monkeypatch.setattr(heads, "choose_C", lambda *a: pytest.fail("C was given; nothing to choose"))
    clf = TransferClassifier(strategy="linear_probe", backbone="precomputed", adapt="mcc", C=0.05, epochs=1,
                             verbose=0).fit(xs.numpy(), ys.numpy().astype(str), X_target=xt.numpy())
    assert clf.fit_summary_["starting_C"] == 0.05


# -- the before/after picture -----------------------------------------------------------------------

def test_domain_view_separated_domains_score_near_one_and_same_distribution_near_half():
    from headstart.adapt.view import domain_view

    rng = np.random.default_rng(0)
    source = rng.normal(size=(200, 6))
    apart = domain_view(source, rng.normal(size=(150, 6)) + 3.0)
    together = domain_view(source, rng.normal(size=(150, 6)))
    assert apart["domain_accuracy"] > 0.95
    assert 0.35 < together["domain_accuracy"] < 0.65
    assert len(apart["source"]) == 200 and len(apart["target"]) == 150 and len(apart["source"][0]) == 2
    assert 0 < sum(apart["explained_variance"]) <= 1.0


def test_domain_view_of_one_feature_draws_on_a_line():
    from headstart.adapt.view import domain_view

    view = domain_view(np.arange(5.0)[:, None], np.arange(5.0, 9.0)[:, None])
    assert all(point[1] == 0.0 for point in view["source"] + view["target"])


def test_frozen_adaptation_records_before_and_after_views_of_the_same_inputs():
    from headstart import TransferClassifier

    xs, ys, xt, _ = _domains(0, d=8, n_per_class=60)
    xt = xt.numpy() + np.r_[0, 0, 0, 2.0, 0, 0, 0, 0]  # and shifted off the class axis
    adapted = TransferClassifier(strategy="linear_probe", backbone="precomputed", adapt="coral", epochs=5,
                                 verbose=0).fit(xs.numpy(), ys.numpy().astype(str), X_target=xt)
    view = adapted.fit_summary_["adaptation_view"]
    n_train = adapted.fit_summary_["n_train"]
    assert view["n_source"] == len(view["source_labels"]) == min(n_train, 300)
    assert view["n_target"] == len(view["before"]["target"]) == len(view["after"]["target"]) == 120
    assert view["before"]["domain_accuracy"] > 0.8  # the shift is plain to a linear domain classifier


@pytest.mark.parametrize("backbone", ["mobilenetv2_100"])
def test_finetune_adaptation_records_views_from_the_backbone_before_and_after(backbone, tmp_path):
    from headstart import TransferClassifier
    from headstart.datasets import load_digits_images

    X, y = load_digits_images()
    X, y = X[:60], y[:60]
    clf = TransferClassifier(strategy="finetune", backbone=backbone, adapt="coral", epochs=1, image_size=32,
                             cache_dir="none", verbose=0).fit(X[:40], y[:40], X_target=255 - X[40:])
    view = clf.fit_summary_["adaptation_view"]
    assert view["n_target"] == 20 and view["n_source"] == clf.fit_summary_["n_train"]
    assert view["before"]["source"] != view["after"]["source"]  # the backbone trained between the two


def test_mcc_stays_finite_when_a_class_gets_no_probability_at_all():
    from headstart.adapt.mcc import mcc_loss

    logits = torch.tensor([[10.0, 0.0, -1e4], [0.0, 10.0, -1e4], [5.0, 5.0, -1e4]], requires_grad=True)
    loss = mcc_loss(logits)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    unused_column_dropped = mcc_loss(logits.detach()[:, :2])
    torch.testing.assert_close(loss.detach() * 3, unused_column_dropped * 2)  # same confusion, averaged over k
