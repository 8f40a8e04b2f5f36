"""From a config to the run's numbers: validation, training length, schedule and optimizer.

Everything here runs before any compilation, so a bad config fails in a second with a message
saying what to change. Configs are read by attribute, so plain objects work as well as ConfigDicts.
"""

import dataclasses
import math
from typing import Any

import optax
from absl import logging

from resnet_jax import data
from resnet_jax.errors import require
from resnet_jax.models import get_spec
from resnet_jax.train import optim

DTYPES = ("float32", "bfloat16")
LR_SCALINGS = ("none", "linear")


def validate_config(config: Any) -> None:
    """Check names and ranges that do not depend on the devices or the dataset's size."""
    get_spec(config.model)
    data.validate_config(config)
    require(config.num_classes > 0, f"num_classes must be positive, got {config.num_classes}")
    require(config.dtype in DTYPES, f"dtype must be one of {DTYPES}, got {config.dtype!r}")
    require(config.learning_rate >= 0, f"learning_rate must be >= 0, got {config.learning_rate}")
    require(config.weight_decay >= 0, f"weight_decay must be >= 0, got {config.weight_decay}")
    require(0 <= config.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {config.label_smoothing}")
    require(0 <= config.ema_decay < 1, f"ema_decay must be in [0, 1), got {config.ema_decay}")
    require(config.lr_scaling in LR_SCALINGS, f"lr_scaling must be one of {LR_SCALINGS}, got {config.lr_scaling!r}")
    require(
        config.num_train_steps > 0 or config.num_epochs > 0,
        f"set num_train_steps > 0 or num_epochs > 0 (got {config.num_train_steps} and {config.num_epochs})",
    )
    require(
        not (config.lr_boundaries and config.lr_boundaries_epochs),
        "set lr_boundaries (steps) or lr_boundaries_epochs, not both",
    )
    require(not (config.warmup_steps and config.warmup_epochs), "set warmup_steps or warmup_epochs, not both")
    for field in ("log_every_steps", "eval_every_steps", "checkpoint_every_steps", "max_checkpoints_to_keep"):
        require(getattr(config, field) > 0, f"{field} must be positive, got {getattr(config, field)}")


@dataclasses.dataclass(frozen=True)
class Length:
    """Training length in optimizer steps, and the steps in one epoch of the train split."""

    num_train_steps: int
    steps_per_epoch: float


def training_length(config: Any, num_train_examples: int) -> Length:
    """Resolve ``num_train_steps`` directly or from ``num_epochs`` and the split size; a positive
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


def base_learning_rate(config: Any) -> float:
    """The configured rate, or after the linear scaling rule when ``lr_scaling='linear'``."""
    if config.lr_scaling == "linear":
        return optim.scaled_learning_rate(config.learning_rate, config.batch_size)
    return config.learning_rate


def build_schedule(config: Any, length: Length) -> optax.Schedule:
    """The learning-rate schedule over optimizer steps, with epoch settings converted to steps."""
    boundaries = list(config.lr_boundaries) or optim.epochs_to_steps(
        config.lr_boundaries_epochs, length.steps_per_epoch
    )
    warmup_steps = config.warmup_steps or round(config.warmup_epochs * length.steps_per_epoch)
    return optim.learning_rate_schedule(
        base_learning_rate=base_learning_rate(config),
        schedule=config.schedule,
        total_steps=length.num_train_steps,
        boundaries=boundaries,
        decay_factor=config.lr_decay_factor,
        warmup_steps=warmup_steps,
        warmup=config.warmup,
        warmup_learning_rate=config.warmup_learning_rate,
    )


def parse_stages(text: str) -> list[str]:
    """'stem, layer1' -> ['stem', 'layer1']."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_multipliers(text: str) -> dict[str, float]:
    """'stem=0.1,layer1=0.5' -> {'stem': 0.1, 'layer1': 0.5}."""
    multipliers = {}
    for part in parse_stages(text):
        stage, sep, value = part.partition("=")
        require(bool(sep), f"lr_multipliers entries look like 'layer1=0.1', got {part!r}")
        multipliers[stage.strip()] = float(value)
    return multipliers


def build_optimizer(config: Any, schedule: optax.Schedule, params: Any) -> optax.GradientTransformation:
    """The optax chain the config describes, with the weight-decay mask and stage freezing/multipliers."""
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
    return optim.with_stage_control(
        tx, params, freeze=parse_stages(config.freeze), multipliers=parse_multipliers(config.lr_multipliers)
    )
