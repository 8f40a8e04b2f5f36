"""Frozen parts run as at inference: running statistics used and kept, no dropout or stochastic depth, so a
frozen body computes what the pretrained network computed (Keras' non-trainable BatchNorm; detectron2's and
timm's FrozenBatchNorm2d)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import random_variables

from resnet_jax.models import create_model, parts
from resnet_jax.models.efficientnet import EfficientNet
from resnet_jax.models.hrnet import HRNet
from resnet_jax.train import optim, step
from resnet_jax.train.state import create_train_state

# One network of each family, small, with every stochastic layer of its body switched on (and the classifier's
# dropout off: the head trains, in train mode).
FAMILIES = {
    "resnet": (lambda: create_model("cifar_resnet20", num_classes=5, block_dropout=0.3, stochastic_depth=0.5), 8),
    "efficientnet": (
        lambda: EfficientNet(
            num_classes=5, width_coefficient=0.25, depth_coefficient=0.5, survival_probability=0.5, head_dropout=0.0
        ),
        32,
    ),
    "hrnet": (
        lambda: HRNet(
            num_classes=5,
            width=2,
            modules_per_stage=(1, 1, 1),
            blocks_per_branch=1,
            stage1_blocks=1,
            stage1_width=2,
            head_dropout=0.0,
        ),
        32,
    ),
}


def with_moved_statistics(variables: dict) -> dict:
    """``variables`` whose running statistics are far from any batch's: train and inference mode differ."""
    stats = jax.tree_util.tree_map_with_path(
        lambda path, leaf: leaf + 0.5 if path[-1].key == "mean" else 2.0 * leaf, variables["batch_stats"]
    )
    return {**variables, "batch_stats": stats}


def body_modules(params: dict) -> list[str]:
    """The top-level modules of every part but the head."""
    return [module for module, part in parts.part_of_modules(params).items() if part != parts.HEAD]


def train_mode_forward(family: str, frozen_body: bool) -> tuple[jax.Array, dict, jax.Array, dict]:
    """(logits, updated statistics) of a train-mode call with the body frozen or not, the eval-mode logits of
    the pretrained network, and its variables."""
    build, size = FAMILIES[family]
    model = build()
    variables = with_moved_statistics(random_variables(model, size))
    images = jnp.asarray(np.random.default_rng(1).standard_normal((4, size, size, 3), dtype=np.float32))
    with step.inference_mode(body_modules(variables["params"]) if frozen_body else []):
        logits, updates = model.apply(
            variables, images, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)}
        )
    return logits, updates["batch_stats"], model.apply(variables, images, train=False), variables


@pytest.mark.parametrize("family", FAMILIES)
def test_a_frozen_body_in_training_computes_the_pretrained_function_and_keeps_its_statistics(family):
    logits, stats, pretrained, variables = train_mode_forward(family, frozen_body=True)
    np.testing.assert_allclose(logits, pretrained, rtol=1e-5, atol=1e-5 * float(jnp.abs(pretrained).max()))
    for (path, kept), (_, before) in zip(
        jax.tree_util.tree_leaves_with_path(stats),
        jax.tree_util.tree_leaves_with_path(variables["batch_stats"]),
        strict=True,
    ):
        np.testing.assert_array_equal(kept, before, err_msg=jax.tree_util.keystr(path))


def test_with_nothing_frozen_the_same_call_trains_so_the_test_above_can_fail():
    logits, stats, pretrained, variables = train_mode_forward("resnet", frozen_body=False)
    assert not np.allclose(logits, pretrained, rtol=1e-3)
    kept = jax.tree_util.tree_map(np.array_equal, stats["bn1"], variables["batch_stats"]["bn1"])  # the stem's BN
    assert not any(jax.tree_util.tree_leaves(kept))


def test_train_steps_leave_frozen_parts_bitwise_as_loaded_and_train_the_rest():
    """Stem and stages 1-2 frozen ('last'), 3 microbatches a step: after 3 jitted steps their parameters and
    statistics are the loaded ones bit for bit (not an average of 3 copies), while the last stage and the head
    train."""
    model = create_model("cifar_resnet20", num_classes=5)
    variables = with_moved_statistics(random_variables(model, 8))
    frozen_parts = ("stem", "layer1", "layer2")
    tx = optim.with_part_control(optax.sgd(0.1, momentum=0.9), variables["params"], freeze=frozen_parts)
    rng = np.random.default_rng(2)
    batches = [
        {"image": jnp.asarray(rng.standard_normal((6, 8, 8, 3), dtype=np.float32)), "label": jnp.arange(6) % 5}
        for _ in range(3)
    ]

    state = create_train_state(variables, tx, jax.random.PRNGKey(0))
    train_step = jax.jit(step.make_train_step(model, tx, grad_accum_steps=3, frozen=frozen_parts))
    for batch in batches:
        state, _ = train_step(state, batch)
    part_of = parts.part_of_modules(variables["params"])
    for module, part in part_of.items():
        for collection in ("params", "batch_stats"):
            if module not in variables[collection]:
                continue
            same = jax.tree_util.tree_map(
                np.array_equal, getattr(state, collection)[module], variables[collection][module]
            )
            assert all(jax.tree_util.tree_leaves(same)) == (part in frozen_parts), (module, collection)


def test_freeze_mode_chooses_whether_the_step_runs_frozen_parts_as_at_inference():
    from configs import finetune
    from resnet_jax.train.program import StepOptions
    from resnet_jax.train.settings import settings_of

    def inference_parts(config) -> tuple[str, ...]:
        settings = settings_of(config)
        return StepOptions.from_settings(settings.run, settings.optimisation).inference_parts

    config = finetune.get_config("last")
    assert inference_parts(config) == ("stem", "layer1", "layer2")
    config.freeze_mode = "train"  # the behaviour before: frozen weights, BatchNorm statistics of each batch
    assert inference_parts(config) == ()
