"""Pieces shared by the recipes: the one grammar of ``:ARG``, and the CIFAR SGD base of wrn.py and resnext.py.

Every config's ``:ARG`` is comma-separated tokens in any order. Each token is a value of one of the
config's axes (dataset, model, recipe) or an option flag; an axis with a default may be left out,
one without must be given. ``configs/random_erasing.py:resnet56,cifar10,erasing`` and
``:cifar10,erasing,resnet56`` are the same run.
"""

from collections.abc import Sequence

import ml_collections

from configs import default
from resnet_jax.data import spec
from resnet_jax.errors import ConfigError

CIFAR_DATASETS = ("cifar10", "cifar100")


def steps_per_epoch(dataset: str, batch_size: int) -> int:
    """Steps in one epoch of a named dataset's train split (a partial last batch counts as a step)."""
    return -(-spec.known(dataset).num_train_examples // batch_size)


def parse_arg(
    arg: str,
    config_file: str,
    axes: dict[str, Sequence[str]],
    defaults: dict[str, str] | None = None,
    options: Sequence[str] = (),
) -> tuple[dict[str, str], set[str]]:
    """``'cifar100,wrn16_8'`` -> ({'dataset': 'cifar100', 'model': 'wrn16_8'}, set()); ConfigError otherwise.

    Args:
      arg: the ``:ARG`` text.
      config_file: the config's path, for the message.
      axes: each axis's allowed values (disjoint across axes and options).
      defaults: the value of an axis that ARG may leave out.
      options: flags that ARG may add (returned as a set).
    """
    defaults = defaults or {}
    tokens = [token.strip() for token in arg.split(",") if token.strip()]
    chosen = {axis: [token for token in tokens if token in values] for axis, values in axes.items()}
    unknown = [token for token in tokens if token not in options and not any(token in v for v in axes.values())]
    repeated = [axis for axis, values in chosen.items() if len(values) > 1]
    missing = [axis for axis, values in chosen.items() if not values and axis not in defaults]
    if unknown or repeated or missing:
        wanted = "; ".join(
            f"one {axis} ({', '.join(values)}{f'; default {defaults[axis]}' if axis in defaults else ''})"
            for axis, values in axes.items()
        )
        problems = [f"unknown {', '.join(unknown)}" if unknown else "", *(f"{a} given twice" for a in repeated)]
        problems += [f"no {axis}" for axis in missing]
        raise ConfigError(
            f"cannot read {config_file}:{arg} ({', '.join(p for p in problems if p)}). Give {wanted}"
            + (f"; options: {', '.join(options)}" if options else "")
            + ", comma-separated in any order."
        )
    choice = {axis: values[0] if values else defaults[axis] for axis, values in chosen.items()}
    return choice, set(tokens) & set(options)


def cifar_sgd_config(dataset: str, model: str) -> ml_collections.ConfigDict:
    """Batch 128, SGD momentum 0.9 from lr 0.1 with a piecewise schedule in epochs: fill in the rest."""
    config = default.get_config()
    config.model = model
    config.dataset = dataset
    config.crop_padding = 4
    config.random_flip = True
    config.batch_size = 128
    config.num_train_steps = 0
    config.optimizer = "sgd"
    config.momentum = 0.9
    config.learning_rate = 0.1
    config.schedule = "piecewise"
    config.log_every_steps = 100
    config.eval_every_steps = 10 * steps_per_epoch(dataset, config.batch_size)
    config.checkpoint_every_steps = 10 * steps_per_epoch(dataset, config.batch_size)
    return config
