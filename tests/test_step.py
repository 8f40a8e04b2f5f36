"""The train step on 8 simulated CPU devices: data parallelism, BatchNorm groups, accumulation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import random_variables
from jax.sharding import NamedSharding, PartitionSpec

from resnet_jax.models import create_model
from resnet_jax.train import sharding
from resnet_jax.train.state import create_train_state
from resnet_jax.train.step import cross_entropy, gradient_norms, make_train_step, split_microbatches, topk_correct

TINY = dict(stage_sizes=(1, 1), widths=(4, 8), stem_width=4)
IMAGE = (8, 8, 3)


def tiny_model(**overrides):
    return create_model("cifar_resnet20", num_classes=5, **TINY, **overrides)


def batch_of(size: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.standard_normal((size, *IMAGE)).astype(np.float32),
        "label": rng.integers(0, 5, size).astype(np.int32),
    }


def run_steps(model, devices, batches, grad_accum_steps=1):
    """Train a few SGD steps with the batch sharded over ``devices``; return the final state on the host."""
    mesh = sharding.make_mesh(devices)
    replicated = sharding.replicated_sharding(mesh)
    tx = optax.sgd(0.1, momentum=0.9)
    state = jax.device_put(create_train_state(random_variables(model, IMAGE[0]), tx, jax.random.PRNGKey(1)), replicated)
    step = jax.jit(
        make_train_step(model, tx, grad_accum_steps=grad_accum_steps, num_shards=len(devices)),
        in_shardings=(replicated, sharding.batch_sharding(mesh)),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )
    for batch in batches:
        state, _ = step(state, sharding.to_global(batch, mesh))
    return state


def assert_trees_close(a, b, atol):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=atol)


def test_eight_devices_match_one_device_with_global_batchnorm():
    assert jax.device_count() == 8
    batches = [batch_of(16, seed) for seed in range(3)]
    one = run_steps(tiny_model(), jax.devices()[:1], batches)
    eight = run_steps(tiny_model(), jax.devices(), batches)
    assert int(eight.step) == 3
    assert_trees_close(one.params, eight.params, atol=2e-5)
    assert_trees_close(one.batch_stats, eight.batch_stats, atol=2e-5)


def test_running_statistics_are_identical_on_every_device():
    state = run_steps(tiny_model(bn_group_size=2), jax.devices(), [batch_of(16)])
    for leaf in jax.tree_util.tree_leaves(state.batch_stats):
        shards = [np.asarray(shard.data) for shard in leaf.addressable_shards]
        assert len(shards) == 8
        for shard in shards[1:]:
            np.testing.assert_array_equal(shard, shards[0])


def test_bn_group_size_decides_which_examples_share_statistics():
    batch = batch_of(8)
    changed = dict(batch, image=batch["image"].copy())
    changed["image"][4:] *= 3.0  # perturb only the second group of 4
    for group_size, first_group_moves in ((4, False), (0, True)):
        model = tiny_model(bn_group_size=group_size)
        variables = random_variables(model, IMAGE[0])

        def logits(images, m=model, v=variables):
            return m.apply(v, images, train=True, mutable=["batch_stats"])[0]

        moved = np.abs(np.asarray(logits(batch["image"]) - logits(changed["image"])))[:4].max()
        assert (moved > 1e-4) == first_group_moves, (group_size, moved)


def test_per_device_groups_on_eight_devices_match_one_device():
    """bn_group_size=2 on 8 devices x 2 examples is the papers' per-GPU BN; one device must agree."""
    batches = [batch_of(16, seed) for seed in range(2)]
    one = run_steps(tiny_model(bn_group_size=2), jax.devices()[:1], batches)
    eight = run_steps(tiny_model(bn_group_size=2), jax.devices(), batches)
    assert_trees_close(one.params, eight.params, atol=2e-5)


def test_gradient_accumulation_reproduces_the_large_batch():
    batches = [batch_of(16, seed) for seed in range(2)]
    whole = run_steps(tiny_model(bn_group_size=4), jax.devices()[:2], batches)
    accumulated = run_steps(tiny_model(bn_group_size=4), jax.devices()[:2], batches, grad_accum_steps=2)
    assert_trees_close(whole.params, accumulated.params, atol=2e-5)
    assert_trees_close(whole.batch_stats, accumulated.batch_stats, atol=2e-5)
    # The split really happens: with per-device BN statistics (groups of 8), microbatches of 4 normalise
    # over other examples, so the result moves.
    whole = run_steps(tiny_model(bn_group_size=0), jax.devices()[:2], batches)
    accumulated = run_steps(tiny_model(bn_group_size=0), jax.devices()[:2], batches, grad_accum_steps=2)
    differences = jax.tree_util.tree_map(lambda a, b: float(np.abs(a - b).max()), whole.params, accumulated.params)
    assert max(jax.tree_util.tree_leaves(differences)) > 1e-4


def test_microbatches_take_a_slice_of_every_shard():
    rows = {"x": jnp.arange(8)}  # 2 shards of 4 rows, 2 microbatches of 2 rows per shard
    micro = split_microbatches(rows, num_microbatches=2, num_shards=2)["x"]
    np.testing.assert_array_equal(micro, [[0, 1, 4, 5], [2, 3, 6, 7]])


def test_cross_entropy_and_label_smoothing_against_hand_values():
    logits = jnp.array([[2.0, 0.0, 0.0]])
    log_z = np.log(np.exp(2) + 2)
    np.testing.assert_allclose(cross_entropy(logits, jnp.array([0]))[0], log_z - 2, rtol=1e-6)
    # smoothing 0.3 over 3 classes: target (0.8, 0.1, 0.1)
    expected = 0.8 * (log_z - 2) + 0.2 * log_z
    np.testing.assert_allclose(cross_entropy(logits, jnp.array([0]), 0.3)[0], expected, rtol=1e-6)


def test_topk_counts_ties_once_and_handles_few_classes():
    logits = jnp.array([[0.1, 0.5, 0.5, 0.2], [3.0, 2.0, 1.0, 0.0]])
    labels = jnp.array([2, 3])
    np.testing.assert_array_equal(topk_correct(logits, labels, 1), [0.0, 0.0])
    np.testing.assert_array_equal(topk_correct(logits, labels, 2), [1.0, 0.0])
    np.testing.assert_array_equal(topk_correct(logits, labels, 5), [1.0, 1.0])  # k > classes: always right


def test_gradient_norms_split_by_stage():
    grads = {"conv1": {"kernel": jnp.full((2,), 3.0)}, "layer1_0": {"w": jnp.array([4.0])}, "fc": {"b": jnp.zeros(1)}}
    norms = gradient_norms(grads)
    np.testing.assert_allclose(norms["grad_norm/stem"], np.sqrt(18))
    np.testing.assert_allclose(norms["grad_norm/layer1"], 4.0)
    np.testing.assert_allclose(norms["grad_norm"], np.sqrt(34))


@pytest.mark.parametrize(
    "args, message",
    [
        ((100, 8, 1), "not divisible by the 8 devices"),
        ((64, 8, 1, 3), "grad_accum_steps=3"),
        ((64, 8, 1, 2, 3), "bn_group_size=3"),
        ((0, 8, 1), "must be positive"),
    ],
)
def test_batch_sizes_fail_with_what_to_change(args, message):
    with pytest.raises(ValueError, match=message):
        sharding.batch_sizes(*args)


def test_batch_sizes_derive_every_level():
    sizes = sharding.batch_sizes(256, 8, 2, grad_accum_steps=2, bn_group_size=16)
    assert (sizes.per_process, sizes.per_device, sizes.per_device_microbatch) == (128, 32, 16)


def test_the_mesh_is_jaxs_topology_ordered_one_over_every_device(monkeypatch):
    calls = []
    make_mesh = jax.make_mesh
    monkeypatch.setattr(jax, "make_mesh", lambda *args, **kwargs: calls.append(args) or make_mesh(*args, **kwargs))
    mesh = sharding.make_mesh()
    assert calls == [((8,), ("data",))]  # jax orders the devices by the physical topology (TPU slices, NVLink)
    assert list(mesh.devices) == list(make_mesh((8,), ("data",), devices=jax.devices()).devices)
    assert mesh.axis_types == (jax.sharding.AxisType.Auto,)  # jit's shardings decide, as with a plain Mesh
    assert list(sharding.make_mesh(jax.devices()[:2]).devices) == jax.devices()[:2]


def test_to_global_shards_the_batch_axis():
    mesh = sharding.make_mesh()
    array = sharding.to_global({"x": np.arange(16, dtype=np.float32)}, mesh)["x"]
    assert array.sharding == NamedSharding(mesh, PartitionSpec("data"))
    assert [shard.data.shape for shard in array.addressable_shards] == [(2,)] * 8


def test_prefetch_to_device_keeps_order_runs_ahead_and_yields_everything():
    mesh = sharding.make_mesh()
    pulled = []

    def host_batches():
        for index in range(5):
            pulled.append(index)
            yield {"x": np.full(8, index, np.float32)}

    prefetched = sharding.prefetch_to_device(host_batches(), mesh, size=2)
    first = next(prefetched)
    assert pulled == [0, 1, 2]  # two batches already on their way while batch 0 is used
    assert first["x"].sharding == NamedSharding(mesh, PartitionSpec("data"))
    rest = [int(batch["x"][0]) for batch in prefetched]
    assert [int(first["x"][0]), *rest] == [0, 1, 2, 3, 4]


def test_bfloat16_computes_in_bf16_but_keeps_state_and_loss_in_float32():
    model = tiny_model(dtype="bfloat16")
    tx = optax.sgd(0.1, momentum=0.9)
    state = create_train_state(random_variables(model, IMAGE[0]), tx, jax.random.PRNGKey(1))
    batch = {name: jnp.asarray(value) for name, value in batch_of(4).items()}
    new_state, outputs = make_train_step(model, tx)(state, batch)
    for leaf in jax.tree_util.tree_leaves((new_state.params, new_state.opt_state, new_state.batch_stats)):
        assert leaf.dtype == jnp.float32
    assert outputs["loss"].dtype == jnp.float32
    hidden = model.apply(state.variables(), batch["image"], return_features=True)["layer1"]
    assert hidden.dtype == jnp.bfloat16
