"""Learning-rate schedules, weight-decay masks and optimizers (optax only; no TensorFlow).

Schedules are functions of the number of completed optimizer steps, so ``schedule(32000)`` is the
rate of the 32,001st update: He et al.'s "divide by 10 at 32k iterations" gives 0.01 there.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from resnet_jax.errors import ConfigError
from resnet_jax.models import parts

SCHEDULES = ("piecewise", "cosine", "exponential", "constant")
WARMUPS = ("linear", "constant")
OPTIMIZERS = ("sgd", "lars", "adamw", "rmsprop")
# How each optimizer can apply weight decay; the first is its own way, the one weight_decay_mode='' picks.
WEIGHT_DECAY_MODES = {"sgd": ("l2", "decoupled"), "lars": ("l2",), "adamw": ("decoupled",), "rmsprop": ("l2",)}
# TensorFlow's RMSProp as the EfficientNet and MnasNet reference code ran it: decay 0.9, epsilon 1e-3 inside the
# square root, the mean square starting at 1 (tf.compat.v1.train.RMSPropOptimizer).
RMSPROP_DECAY = 0.9
RMSPROP_EPSILON = 1e-3
REFERENCE_BATCH_SIZE = 256  # Goyal et al. 2017's linear scaling rule: lr = base * batch / 256


def scaled_learning_rate(base_learning_rate: float, batch_size: int, reference: int = REFERENCE_BATCH_SIZE) -> float:
    """The linear scaling rule: ``base_learning_rate * batch_size / reference``."""
    return base_learning_rate * batch_size / reference


def learning_rate_schedule(
    *,
    base_learning_rate: float,
    schedule: str,
    total_steps: int,
    boundaries: Sequence[int] = (),
    decay_factor: float = 0.1,
    decay_every_steps: int = 0,
    warmup_steps: int = 0,
    warmup: str = "linear",
    warmup_learning_rate: float = 0.0,
) -> optax.Schedule:
    """Build a schedule over optimizer steps.

    Args:
      base_learning_rate: the rate after warm-up (the peak for cosine).
      schedule: ``'piecewise'`` (multiply by ``decay_factor`` at each boundary), ``'cosine'`` (decay to
        0 at ``total_steps``), ``'exponential'`` (staircase: ``decay_factor`` every ``decay_every_steps``)
        or ``'constant'``.
      total_steps: length of training in steps.
      boundaries: steps at which a piecewise schedule decays; see ``epochs_to_steps``.
      decay_factor: multiplier applied at each boundary (0.1 for He et al., 0.2 for WRN), or every
        ``decay_every_steps`` of an ``'exponential'`` schedule (EfficientNet: 0.97).
      decay_every_steps: the exponential schedule's interval (EfficientNet: 2.4 epochs).
      warmup_steps: steps of warm-up before the main schedule.
      warmup: ``'linear'`` (from ``warmup_learning_rate`` up to the base rate) or ``'constant'`` (hold
        ``warmup_learning_rate``, He et al.'s 0.01 for ResNet-110).
      warmup_learning_rate: the starting (linear) or held (constant) warm-up rate.
    """
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if warmup not in WARMUPS:
        raise ConfigError(f"warmup must be one of {WARMUPS}, got {warmup!r}")
    if not 0 <= warmup_steps < total_steps:
        raise ConfigError(f"warmup_steps={warmup_steps} must be in [0, total_steps={total_steps})")
    if list(boundaries) != sorted(boundaries) or any(not 0 < b < total_steps for b in boundaries):
        raise ConfigError(f"boundaries {list(boundaries)} must be increasing and inside (0, {total_steps})")

    if schedule == "exponential" and decay_every_steps < 1:
        raise ConfigError(
            f"an exponential schedule decays every decay_every_steps steps, got {decay_every_steps}; set "
            "lr_decay_every_epochs (EfficientNet: 2.4)"
        )
    if schedule == "piecewise":
        main = optax.piecewise_constant_schedule(base_learning_rate, {int(b): decay_factor for b in boundaries})
    elif schedule == "exponential":
        main = optax.exponential_decay(base_learning_rate, decay_every_steps, decay_factor, staircase=True)
    elif schedule == "cosine":
        main = optax.cosine_decay_schedule(base_learning_rate, total_steps - warmup_steps)
    else:
        main = optax.constant_schedule(base_learning_rate)
    if warmup_steps == 0:
        return main
    if warmup == "linear":
        ramp = optax.linear_schedule(warmup_learning_rate, base_learning_rate, warmup_steps)
    else:
        ramp = optax.constant_schedule(warmup_learning_rate)
    # Piecewise boundaries and exponential decay count absolute steps; cosine counts from the end of warm-up.
    if schedule in ("piecewise", "exponential"):
        return lambda step: jax.numpy.where(step < warmup_steps, ramp(step), main(step))
    return optax.join_schedules([ramp, main], [warmup_steps])


def epochs_to_steps(epochs: Sequence[float], steps_per_epoch: int) -> list[int]:
    """Convert epoch boundaries (e.g. WRN's 60/120/160) to optimizer steps."""
    return [round(epoch * steps_per_epoch) for epoch in epochs]


def weight_decay_mask(params: Any, decay_all: bool = False) -> Any:
    """True for the leaves weight decay applies to: convolution and dense kernels, not BN or biases.

    ``decay_all=True`` decays every parameter, as He et al. 2016 did.
    """
    return jax.tree_util.tree_map_with_path(lambda path, _: decay_all or path[-1].key == "kernel", params)


def scale_by_lars(weight_decay: float, mask: Any | Callable[[Any], Any], trust_coefficient: float = 1e-3):
    """LARS's direction (You, Gitman & Ginsburg 2017, Algorithm 1) for the ``mask``ed leaves:
    ``trust_coefficient * |w| / (|g| + weight_decay * |w|) * (g + weight_decay * w)`` (1 when a norm is 0);
    the other leaves (BN parameters, biases) keep their gradient, with neither decay nor trust ratio."""

    def direction(g, w, on):
        if not on:
            return g
        w_norm, g_norm = jnp.linalg.norm(w), jnp.linalg.norm(g)
        ratio = trust_coefficient * w_norm / (g_norm + weight_decay * w_norm)
        return jnp.where((w_norm > 0) & (g_norm > 0), ratio, 1.0) * (g + weight_decay * w)

    def update(updates, state, params):
        on = mask(params) if callable(mask) else mask
        return jax.tree_util.tree_map(direction, updates, params, on), state

    return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


def make_optimizer(
    *,
    name: str,
    learning_rate: optax.Schedule | float,
    weight_decay: float = 0.0,
    weight_decay_mode: str = "",
    decay_mask: Any | Callable[[Any], Any] = weight_decay_mask,
    momentum: float = 0.9,
    nesterov: bool = False,
    grad_clip_norm: float | None = None,
) -> optax.GradientTransformation:
    """SGD (momentum, optional Nesterov), LARS, AdamW or RMSProp (momentum; TensorFlow's, ``RMSPROP_DECAY`` and
    ``RMSPROP_EPSILON``), with weight decay on the ``decay_mask``ed leaves.

    ``weight_decay_mode`` (``WEIGHT_DECAY_MODES[name]``; '' is the optimizer's first): for SGD ``'l2'``
    adds ``weight_decay * param`` to the gradient before momentum, as the papers (and torch.optim.SGD)
    do, and ``'decoupled'`` subtracts ``lr * weight_decay * param`` from the update (SGDW, Loshchilov &
    Hutter). LARS decays inside its trust ratio (``'l2'``, its paper); AdamW decouples (``'decoupled'``).
    Momentum applies to SGD and LARS; AdamW uses optax's defaults (b1 0.9, b2 0.999, eps 1e-8).
    """
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    check_weight_decay_mode(name, weight_decay_mode)
    mode = weight_decay_mode or WEIGHT_DECAY_MODES[name][0]
    clip = [optax.clip_by_global_norm(grad_clip_norm)] if grad_clip_norm else []
    if name == "adamw":
        return optax.chain(*clip, optax.adamw(learning_rate, weight_decay=weight_decay, mask=decay_mask))
    trace = optax.trace(decay=momentum, nesterov=nesterov)
    if name == "rmsprop":
        rms = optax.scale_by_rms(RMSPROP_DECAY, RMSPROP_EPSILON, initial_scale=1.0, eps_in_sqrt=True)
        decay = optax.add_decayed_weights(weight_decay, decay_mask) if weight_decay else optax.identity()
        return optax.chain(*clip, decay, rms, trace, optax.scale_by_learning_rate(learning_rate))
    if name == "lars":
        return optax.chain(
            *clip, scale_by_lars(weight_decay, decay_mask), optax.scale_by_learning_rate(learning_rate), trace
        )
    decay = optax.add_decayed_weights(weight_decay, decay_mask) if weight_decay else optax.identity()
    steps = [decay, trace] if mode == "l2" else [trace, decay]
    return optax.chain(*clip, *steps, optax.scale_by_learning_rate(learning_rate))


def check_weight_decay_mode(optimizer: str, mode: str) -> None:
    """ConfigError unless ``mode`` is '' (the optimizer's own) or one the optimizer implements."""
    allowed = WEIGHT_DECAY_MODES[optimizer]
    if mode and mode not in allowed:
        raise ConfigError(
            f"weight_decay_mode={mode!r} does not apply to optimizer={optimizer!r}, which decays weights "
            f"{' or '.join(repr(m) for m in allowed)} only; leave weight_decay_mode='' (the optimizer's own way)."
        )


def map_parts(params: Any, value_of_part: Callable[[str], Any]) -> Any:
    """A tree like ``params`` whose leaves are ``value_of_part(the model part of that leaf)``."""
    part_of = parts.part_of_modules(params)
    return jax.tree_util.tree_map_with_path(lambda path, _: value_of_part(part_of[path[0].key]), params)


def part_sizes(params: Any) -> dict[str, int]:
    """Parameters per model part (works on shapes alone)."""
    part_of = parts.part_of_modules(params)
    sizes: dict[str, int] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        part = part_of[path[0].key]
        sizes[part] = sizes.get(part, 0) + int(np.prod(leaf.shape))
    return sizes


def scale_by_tree(multipliers: Any) -> optax.GradientTransformation:
    """Multiply each update by the matching leaf of ``multipliers`` (per-part learning rates)."""

    def update(updates, state, params=None):
        del params
        return jax.tree_util.tree_map(lambda u, m: u * m, updates, multipliers), state

    return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


def with_part_control(
    tx: optax.GradientTransformation,
    params: Any,
    freeze: Sequence[str] = (),
    multipliers: Mapping[str, float] | None = None,
) -> optax.GradientTransformation:
    """Freeze whole model parts (no updates, no optimizer state) and scale the others' updates.

    Parts are the model's own (``resnet_jax.models.parts``: stem, layer1 ... layerN, head). Frozen
    parts go through an optax ``multi_transform`` mask to ``set_to_zero``; multipliers scale the final
    updates, which is a per-part learning rate for SGD, LARS and AdamW alike.
    """
    multipliers = multipliers or {}
    names = parts.part_names(params)
    unknown = sorted((set(freeze) | set(multipliers)) - set(names))
    if unknown:
        raise ConfigError(f"unknown part(s) {unknown} in freeze/lr_multipliers; this model has {', '.join(names)}")
    if not freeze and not multipliers:
        return tx
    sizes = part_sizes(params)
    for part in sorted(set(freeze) | set(multipliers)):
        what = "frozen" if part in freeze else f"learning rate x{multipliers[part]:g}"
        logging.info("%s: %s (%s parameters).", part, what, f"{sizes[part]:,}")
    labels = map_parts(params, lambda part: "frozen" if part in freeze else "trained")
    masked = optax.multi_transform({"frozen": optax.set_to_zero(), "trained": tx}, labels)
    return optax.chain(masked, scale_by_tree(map_parts(params, lambda part: multipliers.get(part, 1.0))))
