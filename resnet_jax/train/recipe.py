"""From a config to the run's numbers: training length, schedule and optimizer.

Everything here runs before any compilation (``train.settings.validate`` has checked each field), so a
bad combination fails in a second with a message saying what to change. Each function reads the settings of
its section: the run's for the length, optimisation's for the schedule and the optimizer.
"""

import dataclasses
import math
from typing import Any

import optax
from absl import logging

from resnet_jax.errors import require
from resnet_jax.train import optim
from resnet_jax.train.fields import parse_multipliers, parse_parts


@dataclasses.dataclass(frozen=True)
class Length:
    """Training length in optimizer steps, and the steps in one epoch of the train split."""

    num_train_steps: int
    steps_per_epoch: float


def training_length(config: Any, num_train_examples: int) -> Length:
    """Resolve ``num_train_steps`` directly or from ``num_epochs`` and the split size (run settings); a positive
    ``num_train_steps`` wins over ``num_epochs`` (logged), as in flax's examples."""
    steps_per_epoch = num_train_examples / config.batch_size
    if config.num_train_steps > 0:
        if config.num_epochs > 0:
            logging.info(
                "num_train_steps=%d overrides num_epochs=%g: training for %d steps (%.2f epochs).",
                config.num_train_steps,
                config.num_epochs,
                config.num_train_steps,
                config.num_train_steps / steps_per_epoch,
            )
        return Length(int(config.num_train_steps), steps_per_epoch)
    return Length(math.ceil(config.num_epochs * steps_per_epoch), steps_per_epoch)


def base_learning_rate(config: Any, batch_size: int) -> float:
    """The configured rate (optimisation settings), or after the linear scaling rule for the global
    ``batch_size`` when ``lr_scaling='linear'``."""
    if config.lr_scaling == "linear":
        return optim.scaled_learning_rate(config.learning_rate, batch_size)
    return config.learning_rate


def build_schedule(config: Any, length: Length, batch_size: int) -> optax.Schedule:
    """The learning-rate schedule (optimisation settings) over optimizer steps, with epoch settings converted
    to steps; ``batch_size`` is the global batch, for ``lr_scaling``.

    A run shortened with ``num_train_steps`` keeps its recipe's decay points: those after its last step
    are never reached (logged); a warm-up as long as the run is an error saying which field to change.
    """
    total = length.num_train_steps
    boundaries = list(config.lr_boundaries) or optim.epochs_to_steps(
        config.lr_boundaries_epochs, length.steps_per_epoch
    )
    if any(boundary >= total for boundary in boundaries):
        logging.warning(
            "Learning-rate decay at step(s) %s comes after the last step (%d): never reached.",
            ", ".join(str(b) for b in boundaries if b >= total),
            total,
        )
        boundaries = [boundary for boundary in boundaries if boundary < total]
    warmup_steps = config.warmup_steps or round(config.warmup_epochs * length.steps_per_epoch)
    given = f"warmup_steps={config.warmup_steps}" if config.warmup_steps else f"warmup_epochs={config.warmup_epochs:g}"
    require(
        warmup_steps < total,
        f"the warm-up ({given}: {warmup_steps} steps) is not shorter than the run ({total} steps); lower "
        f"{given.split('=')[0]} (0 turns it off) or train for more steps.",
    )
    return optim.learning_rate_schedule(
        base_learning_rate=base_learning_rate(config, batch_size),
        schedule=config.schedule,
        total_steps=length.num_train_steps,
        boundaries=boundaries,
        decay_factor=config.lr_decay_factor,
        decay_every_steps=round(config.lr_decay_every_epochs * length.steps_per_epoch),
        warmup_steps=warmup_steps,
        warmup=config.warmup,
        warmup_learning_rate=config.warmup_learning_rate,
    )


def build_optimizer(config: Any, schedule: optax.Schedule, params: Any) -> optax.GradientTransformation:
    """The optax chain the optimisation settings describe, with the weight-decay mask and part freezing and
    multipliers."""
    tx = optim.make_optimizer(
        name=config.optimizer,
        learning_rate=schedule,
        weight_decay=config.weight_decay,
        weight_decay_mode=config.weight_decay_mode,
        decay_mask=lambda tree: optim.weight_decay_mask(tree, decay_all=config.weight_decay_on_all),
        momentum=config.momentum,
        nesterov=config.nesterov,
        grad_clip_norm=config.grad_clip_norm or None,
    )
    return optim.with_part_control(
        tx,
        params,
        freeze=parse_parts(config.freeze),
        multipliers=parse_multipliers(config.lr_multipliers),
    )
