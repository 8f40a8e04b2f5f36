"""BatchNorm against torch.nn.BatchNorm2d, and per-group statistics against a hand computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resnet_jax.models.norm import BatchNorm


def _images(shape=(8, 5, 5, 3), seed=0):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) * 2 + 1


def test_train_step_matches_pytorch_including_unbiased_running_variance():
    torch = pytest.importorskip("torch", reason="needs torch")
    x = _images()
    reference = torch.nn.BatchNorm2d(3)  # momentum 0.1, eps 1e-5, unbiased running variance
    expected = reference.train()(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy().transpose(0, 2, 3, 1)
    norm = BatchNorm()
    variables = norm.init(jax.random.key(0), x, train=False)
    out, updates = norm.apply(variables, x, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_allclose(updates["batch_stats"]["mean"], reference.running_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(updates["batch_stats"]["var"], reference.running_var.numpy(), atol=1e-6)


def test_group_statistics_normalise_each_group_separately():
    x = _images((8, 4, 4, 3))
    norm = BatchNorm(group_size=2)
    variables = norm.init(jax.random.key(0), x, train=False)
    out, updates = norm.apply(variables, x, train=True, mutable=["batch_stats"])
    groups = x.reshape(4, 2, 4, 4, 3)
    mean = groups.mean(axis=(1, 2, 3), keepdims=True)
    var = groups.var(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(out, ((groups - mean) / np.sqrt(var + 1e-5)).reshape(x.shape), atol=1e-5)
    count = 2 * 4 * 4
    np.testing.assert_allclose(updates["batch_stats"]["mean"], 0.1 * mean.reshape(4, 3).mean(0), atol=1e-6)
    expected_var = 0.9 + 0.1 * (var.reshape(4, 3) * count / (count - 1)).mean(0)
    np.testing.assert_allclose(updates["batch_stats"]["var"], expected_var, atol=1e-6)


def test_group_size_changes_which_examples_share_statistics():
    x = _images((8, 4, 4, 3))
    whole = BatchNorm(group_size=0)
    variables = whole.init(jax.random.key(0), x, train=False)
    whole_out, _ = whole.apply(variables, x, train=True, mutable=["batch_stats"])
    grouped_out, _ = BatchNorm(group_size=4).apply(variables, x, train=True, mutable=["batch_stats"])
    assert not np.allclose(whole_out, grouped_out)
    same_out, _ = BatchNorm(group_size=8).apply(variables, x, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(whole_out, same_out, atol=1e-6)


def test_group_size_must_divide_the_batch():
    x = _images((6, 2, 2, 3))
    norm = BatchNorm(group_size=4)
    variables = BatchNorm().init(jax.random.key(0), x, train=False)
    with pytest.raises(ValueError, match="group_size=4 does not divide the batch of 6"):
        norm.apply(variables, x, train=True, mutable=["batch_stats"])


def test_eval_uses_running_statistics():
    x = _images()
    norm = BatchNorm()
    variables = {
        "params": {"scale": jnp.full(3, 2.0), "bias": jnp.full(3, 0.5)},
        "batch_stats": {"mean": jnp.full(3, 1.0), "var": jnp.full(3, 4.0)},
    }
    expected = (x - 1.0) / np.sqrt(4.0 + 1e-5) * 2.0 + 0.5
    np.testing.assert_allclose(norm.apply(variables, x, train=False), expected, atol=1e-5)


def test_a_large_mean_against_a_small_spread_keeps_the_batch_variance_exact():
    # Moments are taken in one pass; about zero, E[x^2] - E[x]^2 would lose the variance of 1 against
    # a mean of 3,000 in float32 (E[x^2] ~ 9e6). Taken about a value near the mean it stays exact,
    # whatever the running mean (here far off, at 0).
    x = (np.random.default_rng(1).standard_normal((64, 8, 8, 3)) + 3000.0).astype(np.float32)
    expected = x.astype(np.float64).var(axis=(0, 1, 2))
    variables = {
        "params": {"scale": jnp.ones(3), "bias": jnp.zeros(3)},
        "batch_stats": {"mean": jnp.zeros(3), "var": jnp.ones(3)},
    }
    out, updates = BatchNorm(momentum=0.0).apply(variables, x, train=True, mutable=["batch_stats"])
    count = x.size // 3
    np.testing.assert_allclose(updates["batch_stats"]["var"] * (count - 1) / count, expected, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(out, np.float64).std(axis=(0, 1, 2)), 1.0, rtol=1e-3)
