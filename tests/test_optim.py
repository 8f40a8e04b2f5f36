"""Schedules at their published boundary values, weight-decay masks, and SGD against torch.optim.SGD."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from resnet_jax.errors import ConfigError
from resnet_jax.models import abstract_variables, create_model
from resnet_jax.train.optim import (
    epochs_to_steps,
    learning_rate_schedule,
    make_optimizer,
    scaled_learning_rate,
    weight_decay_mask,
    with_part_control,
)


def _values(schedule, steps):
    return [float(schedule(step)) for step in steps]


def test_he2016_cifar_schedule():
    """0.1, divided by 10 at 32k and 48k iterations, training stops at 64k (He et al. 2016 Sec. 4.2)."""
    schedule = learning_rate_schedule(
        base_learning_rate=0.1, schedule="piecewise", total_steps=64_000, boundaries=(32_000, 48_000)
    )
    values = _values(schedule, [0, 31_999, 32_000, 47_999, 48_000, 63_999])
    np.testing.assert_allclose(values, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)


def test_resnet110_warmup_holds_0_01_then_follows_the_schedule():
    """He et al.: ResNet-110 starts at 0.01 until training error < 80% (~400 iterations), then 0.1."""
    schedule = learning_rate_schedule(
        base_learning_rate=0.1,
        schedule="piecewise",
        total_steps=64_000,
        boundaries=(32_000, 48_000),
        warmup_steps=400,
        warmup="constant",
        warmup_learning_rate=0.01,
    )
    values = _values(schedule, [0, 399, 400, 31_999, 32_000, 48_000])
    np.testing.assert_allclose(values, [0.01, 0.01, 0.1, 0.1, 0.01, 0.001], rtol=1e-6)


def test_wide_resnet_multistep_by_epochs():
    """Zagoruyko & Komodakis: 0.1 multiplied by 0.2 at epochs 60, 120 and 160 of 200."""
    steps_per_epoch = 391  # ceil(50,000 / 128)
    boundaries = epochs_to_steps([60, 120, 160], steps_per_epoch)
    assert boundaries == [23_460, 46_920, 62_560]
    schedule = learning_rate_schedule(
        base_learning_rate=0.1,
        schedule="piecewise",
        total_steps=200 * steps_per_epoch,
        boundaries=boundaries,
        decay_factor=0.2,
    )
    values = _values(schedule, [0, 23_459, 23_460, 46_920, 62_560, 200 * steps_per_epoch - 1])
    np.testing.assert_allclose(values, [0.1, 0.1, 0.02, 0.004, 0.0008, 0.0008], rtol=1e-5)


def test_linear_warmup_then_cosine():
    schedule = learning_rate_schedule(base_learning_rate=0.4, schedule="cosine", total_steps=1_000, warmup_steps=100)
    values = _values(schedule, [0, 50, 100, 550, 1_000])
    np.testing.assert_allclose(values, [0.0, 0.2, 0.4, 0.2, 0.0], atol=1e-6)


def test_linear_scaling_rule():
    assert scaled_learning_rate(0.1, 1024) == pytest.approx(0.4)
    assert scaled_learning_rate(0.1, 256) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"schedule": "step"}, "schedule must be one of"),
        ({"boundaries": (48_000, 32_000)}, "must be increasing"),
        ({"boundaries": (70_000,)}, "inside"),
        ({"warmup_steps": 64_000}, "warmup_steps"),
    ],
)
def test_bad_schedules_are_clear_errors(kwargs, message):
    arguments = {"base_learning_rate": 0.1, "schedule": "piecewise", "total_steps": 64_000, **kwargs}
    with pytest.raises(ValueError, match=message):
        learning_rate_schedule(**arguments)


def test_weight_decay_mask_excludes_exactly_batchnorm_and_biases():
    params = abstract_variables(create_model("cifar_resnet20", num_classes=10), 32)["params"]
    mask = weight_decay_mask(params)
    decayed = sum(
        int(np.prod(leaf.shape))
        for leaf, on in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(mask), strict=True)
        if on
    )
    # Hand count: conv kernels 432 + 6*2304 + (4608 + 5*9216) + (18432 + 5*36864), plus the 64x10 fc kernel.
    assert decayed == 432 + 6 * 2304 + 4608 + 5 * 9216 + 18432 + 5 * 36864 + 640
    assert mask["bn1"] == {"scale": False, "bias": False} and mask["fc"] == {"kernel": True, "bias": False}
    assert all(jax.tree_util.tree_leaves(weight_decay_mask(params, decay_all=True)))


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_with_l2_matches_torch_sgd(nesterov):
    torch = pytest.importorskip("torch", reason="needs torch")
    rng = np.random.default_rng(0)
    target = rng.standard_normal(5).astype(np.float32)
    start = {"layer": {"kernel": rng.standard_normal(5).astype(np.float32), "bias": np.ones(5, np.float32)}}

    weights = [torch.tensor(start["layer"]["kernel"], requires_grad=True)]
    biases = [torch.tensor(start["layer"]["bias"], requires_grad=True)]
    reference = torch.optim.SGD(
        [{"params": weights, "weight_decay": 5e-4}, {"params": biases, "weight_decay": 0.0}],
        lr=0.1,
        momentum=0.9,
        nesterov=nesterov,
    )
    optimizer = make_optimizer(name="sgd", learning_rate=0.1, weight_decay=5e-4, nesterov=nesterov)
    params = jax.tree_util.tree_map(jnp.asarray, start)
    state = optimizer.init(params)

    def loss(p):
        return jnp.sum((p["layer"]["kernel"] * p["layer"]["bias"] - target) ** 2)

    for _ in range(5):
        reference.zero_grad()
        torch.sum((weights[0] * biases[0] - torch.from_numpy(target)) ** 2).backward()
        reference.step()
        updates, state = optimizer.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(params["layer"]["kernel"], weights[0].detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(params["layer"]["bias"], biases[0].detach().numpy(), rtol=1e-5)


def test_frozen_parts_do_not_move_and_multipliers_scale_updates(caplog):
    params = {
        "conv1": {"kernel": jnp.ones((2,))},
        "layer1_0": {"conv1": {"kernel": jnp.ones((2,))}},
        "fc": {"kernel": jnp.ones((2,)), "bias": jnp.ones((2,))},
    }
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    with caplog.at_level("INFO"):
        tx = with_part_control(optax.sgd(0.1), params, freeze=["stem"], multipliers={"head": 0.5})
    assert "stem: frozen (2 parameters)." in caplog.text  # what each setting hit, logged once
    assert "head: learning rate x0.5 (4 parameters)." in caplog.text
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["conv1"]["kernel"], 0.0)
    np.testing.assert_allclose(updates["layer1_0"]["conv1"]["kernel"], -0.1)
    np.testing.assert_allclose(updates["fc"]["bias"], -0.05)
    with pytest.raises(ValueError, match="unknown part.*this model has stem, layer1, head"):
        with_part_control(optax.sgd(0.1), params, freeze=["layer4"])


def test_rmsprop_is_tensorflows_as_the_efficientnet_reference_ran_it():
    """tf.compat.v1 RMSProp with momentum, written out: ms = 0.9 ms + 0.1 g^2 (ms starts at 1), mom = 0.9 mom +
    g / sqrt(ms + 1e-3), w -= lr mom; weight decay (l2) added to the gradient first."""
    params = {"w": jnp.asarray([1.0, -2.0, 0.5])}
    tx = make_optimizer(name="rmsprop", learning_rate=0.1, weight_decay=0.01, decay_mask=lambda tree: {"w": True})
    state = tx.init(params)
    w, ms, mom = np.array([1.0, -2.0, 0.5]), np.ones(3), np.zeros(3)
    for gradient in (np.array([0.3, -1.0, 2.0]), np.array([-0.5, 0.2, 0.1]), np.array([1.5, 0.0, -0.7])):
        updates, state = tx.update({"w": jnp.asarray(gradient, jnp.float32)}, state, params)
        params = optax.apply_updates(params, updates)
        g = gradient + 0.01 * w
        ms = 0.9 * ms + 0.1 * g**2
        mom = 0.9 * mom + g / np.sqrt(ms + 1e-3)
        w = w - 0.1 * mom
        np.testing.assert_allclose(np.asarray(params["w"]), w, rtol=1e-5)


def test_exponential_schedule_steps_down_by_the_factor_every_interval_after_warm_up():
    lr = learning_rate_schedule(
        base_learning_rate=0.256,
        schedule="exponential",
        total_steps=1000,
        decay_factor=0.97,
        decay_every_steps=10,
        warmup_steps=20,
    )
    assert float(lr(10)) == pytest.approx(0.128)  # half-way up the linear warm-up
    assert [float(lr(step)) for step in (20, 29, 30, 105)] == pytest.approx(
        [0.256 * 0.97**2, 0.256 * 0.97**2, 0.256 * 0.97**3, 0.256 * 0.97**10]
    )
    with pytest.raises(ConfigError, match="lr_decay_every_epochs"):
        learning_rate_schedule(base_learning_rate=0.1, schedule="exponential", total_steps=100)
