"""Each optimiser against an implementation written here from its paper (or PyTorch's), over several steps
on a small network's parameters; the EMA against its recursion; weight_decay_mode where it applies."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import random_variables

from resnet_jax import config_schema
from resnet_jax.errors import ConfigError
from resnet_jax.models import create_model
from resnet_jax.train import recipe
from resnet_jax.train.optim import make_optimizer, weight_decay_mask
from resnet_jax.train.settings import settings_of
from resnet_jax.train.state import create_train_state
from resnet_jax.train.step import make_train_step

LEARNING_RATE, WEIGHT_DECAY, MOMENTUM, STEPS = 0.1, 5e-4, 0.9, 4


def small_params() -> dict:
    """A conv-BN-ReLU-dense network's parameters, named as a ResNet's stem and head: kernels are decayed,
    BN parameters and biases are not."""
    rng = np.random.default_rng(0)
    return {
        "conv1": {"kernel": rng.standard_normal((3, 3, 2, 4)).astype(np.float32)},
        "bn1": {"scale": (1 + 0.1 * rng.standard_normal(4)).astype(np.float32), "bias": np.zeros(4, np.float32)},
        "fc": {"kernel": rng.standard_normal((4, 3)).astype(np.float32), "bias": np.full(3, 0.1, np.float32)},
    }


def small_loss(params, images, labels):
    x = jax.lax.conv_general_dilated(
        images, params["conv1"]["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    x = jax.nn.relu(x * params["bn1"]["scale"] + params["bn1"]["bias"]).mean(axis=(1, 2))
    logits = x @ params["fc"]["kernel"] + params["fc"]["bias"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def gradients_along(params, update_rule):
    """Run ``STEPS`` steps of ``update_rule(params, grads, step) -> params`` on fixed batches; the final params."""
    rng = np.random.default_rng(1)
    for step in range(STEPS):
        images = rng.standard_normal((8, 5, 5, 2)).astype(np.float32)
        labels = rng.integers(0, 3, 8)
        grads = jax.tree_util.tree_map(np.asarray, jax.grad(small_loss)(params, images, labels))
        params = update_rule(params, grads, step)
    return params


def with_optax(tx):
    """An update rule that applies an optax transformation (its state kept across steps)."""
    state = {}

    def rule(params, grads, step):
        if step == 0:
            state["opt"] = tx.init(params)
        updates, state["opt"] = tx.update(grads, state["opt"], params)
        return jax.tree_util.tree_map(np.asarray, optax.apply_updates(params, updates))

    return rule


def decayed(path: str) -> bool:
    """Convolution and dense kernels are decayed; BN parameters and biases are not (the package's default)."""
    return path.endswith("kernel")


def flat(tree: dict) -> dict[str, np.ndarray]:
    return {f"{module}/{name}": value for module, leaves in tree.items() for name, value in leaves.items()}


def unflat(values: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for path, value in values.items():
        module, name = path.split("/")
        tree.setdefault(module, {})[name] = value
    return tree


def assert_trees_close(ours: dict, reference: dict, atol: float = 1e-6) -> None:
    """Equal to float32 rounding: parameters are O(1) and each step moves them by O(lr)."""
    for path, value in flat(reference).items():
        np.testing.assert_allclose(flat(ours)[path], value, rtol=1e-5, atol=atol, err_msg=path)


def test_lars_matches_you_et_al_2017_algorithm_1():
    """LARS (You, Gitman & Ginsburg 2017, Algorithm 1): local lr = eta * |w| / (|g| + beta * |w|),
    v = m * v + lr * local_lr * (g + beta * w), w = w - v. BN parameters and biases get neither weight
    decay nor the trust ratio (as in Goyal et al.'s and the SimCLR/BYOL LARS)."""
    eta = 0.001
    velocity: dict[str, np.ndarray] = {}

    def lars(params, grads, step):
        new = {}
        for path, w in flat(params).items():
            g = flat(grads)[path]
            if decayed(path):
                w_norm, g_norm = np.linalg.norm(w), np.linalg.norm(g)
                local = eta * w_norm / (g_norm + WEIGHT_DECAY * w_norm) if w_norm > 0 and g_norm > 0 else 1.0
                direction = local * (g + WEIGHT_DECAY * w)
            else:
                direction = g
            velocity[path] = MOMENTUM * velocity.get(path, 0.0) + LEARNING_RATE * direction
            new[path] = w - velocity[path]
        return unflat(new)

    reference = gradients_along(small_params(), lars)
    ours = gradients_along(
        small_params(),
        with_optax(make_optimizer(name="lars", learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY)),
    )
    assert_trees_close(ours, reference)


def test_adamw_matches_torch_adamw():
    torch = pytest.importorskip("torch", reason="needs torch")
    start = small_params()
    tensors = {path: torch.tensor(value, requires_grad=True) for path, value in flat(start).items()}
    reference = torch.optim.AdamW(
        [
            {"params": [t for p, t in tensors.items() if decayed(p)], "weight_decay": WEIGHT_DECAY},
            {"params": [t for p, t in tensors.items() if not decayed(p)], "weight_decay": 0.0},
        ],
        lr=LEARNING_RATE,
    )

    def torch_adamw(params, grads, step):
        for path, tensor in tensors.items():
            tensor.grad = torch.from_numpy(np.array(flat(grads)[path]))
        reference.step()
        return unflat({path: tensor.detach().numpy().copy() for path, tensor in tensors.items()})

    expected = gradients_along(start, torch_adamw)
    ours = gradients_along(
        small_params(),
        with_optax(
            make_optimizer(
                name="adamw", learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY, weight_decay_mode="decoupled"
            )
        ),
    )
    assert_trees_close(ours, expected, atol=1e-5)  # Adam's steps are lr-sized whatever the gradient


def test_decoupled_sgd_decays_outside_the_momentum():
    """Loshchilov & Hutter's SGDW: v = m * v + g; w = w - lr * (v + wd * w) on the decayed parameters."""
    velocity: dict[str, np.ndarray] = {}

    def sgdw(params, grads, step):
        new = {}
        for path, w in flat(params).items():
            velocity[path] = MOMENTUM * velocity.get(path, 0.0) + flat(grads)[path]
            new[path] = w - LEARNING_RATE * (velocity[path] + (WEIGHT_DECAY * w if decayed(path) else 0.0))
        return unflat(new)

    reference = gradients_along(small_params(), sgdw)
    tx = make_optimizer(
        name="sgd", learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY, weight_decay_mode="decoupled"
    )
    assert_trees_close(gradients_along(small_params(), with_optax(tx)), reference)


def test_the_default_mask_is_the_kernels():
    mask = weight_decay_mask(small_params())
    assert {path for path, on in flat(mask).items() if on} == {"conv1/kernel", "fc/kernel"}


@pytest.mark.parametrize("optimizer", ["sgd", "lars", "adamw"])
def test_weight_decay_mode_changes_the_result_or_is_refused(optimizer):
    results = {}
    for mode in ("l2", "decoupled"):
        config = config_schema.default_config()
        config.optimizer, config.weight_decay_mode, config.weight_decay = optimizer, mode, 0.05
        try:
            config_schema.validate(config)
        except ConfigError as error:
            assert "weight_decay_mode" in str(error) and optimizer in str(error)
            continue
        tx = make_optimizer(name=optimizer, learning_rate=LEARNING_RATE, weight_decay=0.05, weight_decay_mode=mode)
        results[mode] = gradients_along(small_params(), with_optax(tx))
    assert results, "every mode refused"
    if len(results) == 2:
        assert not np.allclose(results["l2"]["conv1"]["kernel"], results["decoupled"]["conv1"]["kernel"])


def test_the_ema_follows_its_recursion_from_the_initial_parameters():
    """EMA_0 = params_0 and EMA_t = d * EMA_(t-1) + (1 - d) * params_t, for each train step t."""
    decay = 0.8
    model = create_model("cifar_resnet20", num_classes=5, stage_sizes=(1, 1), widths=(4, 8), stem_width=4)
    tx = optax.sgd(0.1, momentum=0.9)
    state = create_train_state(random_variables(model, 8), tx, jax.random.PRNGKey(1), use_ema=True)
    step = jax.jit(make_train_step(model, tx, ema_decay=decay))
    expected = jax.tree_util.tree_map(np.asarray, state.params)
    rng = np.random.default_rng(0)
    for _ in range(3):
        batch = {
            "image": jnp.asarray(rng.standard_normal((4, 8, 8, 3)), jnp.float32),
            "label": jnp.asarray(rng.integers(0, 5, 4), jnp.int32),
        }
        state, _ = step(state, batch)
        expected = jax.tree_util.tree_map(lambda e, p: decay * e + (1 - decay) * np.asarray(p), expected, state.params)
    for ours, reference in zip(
        jax.tree_util.tree_leaves(state.ema_params), jax.tree_util.tree_leaves(expected), strict=True
    ):
        np.testing.assert_allclose(np.asarray(ours), reference, rtol=1e-6, atol=1e-7)


def test_gradient_clipping_matches_torch_where_it_clips_and_where_it_does_not():
    """The config's ``grad_clip_norm`` through ``recipe.build_optimizer``, against
    ``torch.nn.utils.clip_grad_norm_`` then ``torch.optim.SGD`` (momentum, weight decay on the kernels):
    the clip acts on the raw gradient's global norm, before weight decay and momentum."""
    torch = pytest.importorskip("torch", reason="needs torch")
    config = config_schema.default_config()
    config.update(dict(optimizer="sgd", momentum=MOMENTUM, weight_decay=WEIGHT_DECAY))
    unclipped_rule, norms = (
        with_optax(recipe.build_optimizer(settings_of(config).optimisation, LEARNING_RATE, small_params())),
        [],
    )

    def unclipped_recording_norms(params, grads, step):
        norms.append(float(optax.tree.norm(grads)))
        return unclipped_rule(params, grads, step)

    unclipped = gradients_along(small_params(), unclipped_recording_norms)
    config.grad_clip_norm = float(np.median(norms))
    tensors = {path: torch.tensor(value, requires_grad=True) for path, value in flat(small_params()).items()}
    reference = torch.optim.SGD(
        [
            {"params": [t for p, t in tensors.items() if decayed(p)], "weight_decay": WEIGHT_DECAY},
            {"params": [t for p, t in tensors.items() if not decayed(p)], "weight_decay": 0.0},
        ],
        lr=LEARNING_RATE,
        momentum=MOMENTUM,
    )
    torch_norms = []

    def torch_sgd(params, grads, step):
        for path, tensor in tensors.items():
            tensor.grad = torch.from_numpy(np.array(flat(grads)[path]))
        torch_norms.append(float(torch.nn.utils.clip_grad_norm_(list(tensors.values()), config.grad_clip_norm)))
        reference.step()
        return unflat({path: tensor.detach().numpy().copy() for path, tensor in tensors.items()})

    expected = gradients_along(small_params(), torch_sgd)
    assert min(torch_norms) < config.grad_clip_norm < max(torch_norms)  # steps on both sides of the bound
    ours = gradients_along(
        small_params(),
        with_optax(recipe.build_optimizer(settings_of(config).optimisation, LEARNING_RATE, small_params())),
    )
    assert_trees_close(ours, expected)
    assert max(np.abs(flat(unclipped)[path] - value).max() for path, value in flat(ours).items()) > 1e-3
