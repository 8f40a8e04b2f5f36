"""Pure train and eval steps (jax, flax and optax only), ready for ``jax.jit`` over a data-parallel mesh.

Images arrive as stored (uint8) and are normalised here, on the device, by the ``normalise`` the
dataset provides. Steps return per-example values (loss, top-1/top-5 correctness, mask) and per-step scalars (gradient
norms); the caller reduces them to exact sums, so no host synchronisation happens inside the step.
"""

import contextlib
import inspect
from collections.abc import Callable, Collection
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from resnet_jax.data import MIXING_STREAM, NO_MIXING, Mixing, mix
from resnet_jax.models import parts
from resnet_jax.train.state import TrainState

Batch = dict[str, jax.Array]
Normalise = Callable[[jax.Array], jax.Array]


def _identity(images: jax.Array) -> jax.Array:
    return images


def cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
    """Per-example softmax cross-entropy in float32, with optional label smoothing."""
    num_classes = logits.shape[-1]
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
    return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


def topk_correct(logits: jax.Array, labels: jax.Array, k: int) -> jax.Array:
    """1.0 where the label is among the ``k`` highest logits (ties broken by index), else 0.0."""
    k = min(k, logits.shape[-1])
    label_logit = jnp.take_along_axis(logits, labels[:, None], axis=-1)
    classes = jnp.arange(logits.shape[-1])
    beats_label = (logits > label_logit) | ((logits == label_logit) & (classes < labels[:, None]))
    return (beats_label.sum(axis=-1) < k).astype(jnp.float32)


def gradient_norms(grads: Any) -> dict[str, jax.Array]:
    """The global gradient norm and one per model part (``grad_norm/stem``, ``grad_norm/layer1``, ...)."""
    squares: dict[str, jax.Array] = {}
    part_of = parts.part_of_modules(grads)
    for name, subtree in grads.items():
        part = f"grad_norm/{part_of[name]}"
        squares[part] = squares.get(part, 0.0) + sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(subtree))
    norms = {part: jnp.sqrt(total) for part, total in squares.items()}
    norms["grad_norm"] = jnp.sqrt(sum(squares.values()))
    return norms


def inference_mode(modules: Collection[str]) -> contextlib.AbstractContextManager:
    """Within it, the model's top-level ``modules`` run as at inference: each call's ``train`` is False, so their
    BatchNorm normalises with, and keeps, its running statistics, and their dropout and stochastic depth are off."""

    def interceptor(next_fun, args, kwargs, context):
        path = context.module.scope.path if context.module.scope is not None else ()
        if context.method_name != "__call__" or len(path) != 1 or path[0] not in modules:
            return next_fun(*args, **kwargs)
        call = inspect.signature(type(context.module).__call__).bind(context.module, *args, **kwargs)
        if "train" in call.arguments:
            call.arguments["train"] = False
        return next_fun(*call.args[1:], **call.kwargs)

    return nn.intercept_methods(interceptor) if modules else contextlib.nullcontext()


def split_microbatches(batch: Batch, num_microbatches: int, num_shards: int) -> Batch:
    """Reshape a sharded batch (B, ...) to (num_microbatches, B / num_microbatches, ...).

    Microbatch i takes the i-th slice of every shard's rows, so it stays spread over all devices
    and consecutive examples (BatchNorm groups) stay together.
    """

    def split(x: jax.Array) -> jax.Array:
        per_shard = x.shape[0] // num_shards
        x = x.reshape((num_shards, num_microbatches, per_shard // num_microbatches) + x.shape[1:])
        return jnp.swapaxes(x, 0, 1).reshape((num_microbatches, -1) + x.shape[3:])

    return jax.tree_util.tree_map(split, batch)


def make_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    *,
    label_smoothing: float = 0.0,
    grad_accum_steps: int = 1,
    num_shards: int = 1,
    ema_decay: float = 0.0,
    normalise: Normalise = _identity,
    mixing: Mixing = NO_MIXING,
    frozen: Collection[str] = (),
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """Build ``train_step(state, batch) -> (state, outputs)`` for ``batch = {'image', 'label'}``.

    ``normalise`` maps the batch's images to the model's input (the dataset's ``Normalisation``);
    ``mixing`` then applies Cutout, Mixup or CutMix to the global batch (``resnet_jax.data.augment.mixing``),
    and the loss weighs each example's label and its partner's.

    With ``grad_accum_steps = k`` the batch is processed as k microbatches; gradients are averaged
    and each microbatch's BatchNorm update starts from the same running statistics, then the k
    updates are averaged. With ``bn_group_size`` dividing the microbatch this equals one step on the
    whole batch. ``num_shards`` is the number of devices the batch axis is split over.

    The parts in ``frozen`` (``resnet_jax.models.parts``' names, whose updates the optimizer zeroes) run as at
    inference (``inference_mode``): they compute what the pretrained network computes, and their BatchNorm
    statistics stay as they were.
    """

    def microbatch_gradients(state: TrainState, micro: Batch, rng: jax.Array, weight: jax.Array, frozen_modules):
        def loss_fn(params):
            with inference_mode(frozen_modules):
                logits, updates = model.apply(
                    {"params": params, "batch_stats": state.batch_stats},
                    micro["image"],
                    train=True,
                    mutable=["batch_stats"],
                    rngs={"dropout": rng},
                )
            losses = cross_entropy(logits, micro["label"], label_smoothing)
            if mixing.mixes:
                losses = weight * losses + (1 - weight) * cross_entropy(logits, micro["partner"], label_smoothing)
            return losses.mean(), (updates["batch_stats"], logits, losses)

        grads, (batch_stats, logits, losses) = jax.grad(loss_fn, has_aux=True)(state.params)
        return grads, batch_stats, {"loss": losses, "top1": topk_correct(logits, micro["label"], 1)}

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        frozen_modules = {module for module, part in parts.part_of_modules(state.params).items() if part in frozen}
        step_rng = jax.random.fold_in(state.rng, state.step)
        images, weight = normalise(batch["image"]), jnp.ones((), jnp.float32)
        rows = {"image": images, "label": batch["label"]}
        if mixing.active:
            mixed = mix(images, jax.random.fold_in(step_rng, MIXING_STREAM), mixing)
            rows = {"image": mixed.images, "label": batch["label"], "partner": batch["label"][mixed.partner]}
            weight = mixed.weight
        micro = split_microbatches(rows, grad_accum_steps, num_shards)

        # A Python loop, not lax.scan: XLA:CPU runs convolutions inside loops an order of magnitude slower.
        grad_sum, stats_sum, outputs = None, None, []
        for index in range(grad_accum_steps):
            micro_batch = jax.tree_util.tree_map(lambda x, i=index: x[i], micro)
            grads, batch_stats, micro_outputs = microbatch_gradients(
                state, micro_batch, jax.random.fold_in(step_rng, index), weight, frozen_modules
            )
            grad_sum = grads if grad_sum is None else jax.tree_util.tree_map(jnp.add, grad_sum, grads)
            stats_sum = batch_stats if stats_sum is None else jax.tree_util.tree_map(jnp.add, stats_sum, batch_stats)
            outputs.append(micro_outputs)
        grads, batch_stats = jax.tree_util.tree_map(lambda total: total / grad_accum_steps, (grad_sum, stats_sum))
        # A frozen part's statistics are its own, not an average of k copies (not always bitwise the same).
        batch_stats = {
            name: state.batch_stats[name] if name in frozen_modules else stats for name, stats in batch_stats.items()
        }
        outputs = jax.tree_util.tree_map(lambda *values: jnp.concatenate(values), *outputs)

        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema_params = state.ema_params
        if ema_params is not None:
            ema_params = optax.incremental_update(params, ema_params, 1.0 - ema_decay)
        new_state = state.replace(
            step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state, ema_params=ema_params
        )
        return new_state, {**outputs, **gradient_norms(grads)}

    return train_step


def make_eval_step(model: nn.Module, normalise: Normalise = _identity) -> Callable[[dict, Batch], dict[str, jax.Array]]:
    """Build ``eval_step(variables, batch) -> outputs`` with per-example loss, top1, top5 and mask.

    ``batch['mask']`` is 0 for padding examples; callers sum ``value * mask`` and divide by the
    mask's sum, so every real example counts exactly once.
    """

    def eval_step(variables: dict, batch: Batch) -> dict[str, jax.Array]:
        logits = model.apply(variables, normalise(batch["image"]), train=False)
        labels = batch["label"]
        return {
            "loss": cross_entropy(logits, labels),
            "top1": topk_correct(logits, labels, 1),
            "top5": topk_correct(logits, labels, 5),
            "mask": batch["mask"],
        }

    return eval_step
