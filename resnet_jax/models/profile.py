"""Parameter and multiply-accumulate counts by shape evaluation: no weights are allocated, nothing runs.

Convention: MACs are those of convolutions and dense layers for one example (torchvision's
"GFLOPS" column uses the same convention). BatchNorm, activations, pooling and additions are not
counted; they are a fraction of a percent.
"""

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn


def abstract_variables(model: nn.Module, input_size: int, channels: int = 3) -> Any:
    """Shapes and dtypes of ``model.init`` at one image of ``input_size``, without allocating them."""
    images = jax.ShapeDtypeStruct((1, input_size, input_size, channels), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)


@dataclasses.dataclass(frozen=True)
class ModelProfile:
    """Size and cost of a model at one input size."""

    params: int  # trainable parameters: the ``params`` collection, BatchNorm scale and bias included
    macs: int  # multiply-accumulates of convolutions and dense layers, per example


@dataclasses.dataclass(frozen=True)
class ModuleRow:
    """One module of a model's tree: where it is, what it is, its output and what it and its children hold."""

    path: tuple[str, ...]  # names from the root (the root is ())
    kind: str  # the module's class name
    output_shape: tuple[int, ...]
    params: int  # parameters of this module and everything inside it
    macs: int  # convolution and dense multiply-accumulates of this module and everything inside it, per example


def module_rows(model: nn.Module, input_size: int, channels: int = 3) -> list[ModuleRow]:
    """Every module ``model`` calls for one image of ``input_size``, parents before their children, in a single
    shape trace; the first row is the whole model."""
    called: dict[tuple[str, ...], tuple[str, tuple[int, ...]]] = {}
    macs: dict[tuple[str, ...], int] = {}

    def record(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        path = tuple(module.path)
        called.setdefault(path, (type(module).__name__, ()))  # entry order: parents first
        outputs = next_fun(*args, **kwargs)
        called[path] = (type(module).__name__, tuple(getattr(outputs, "shape", ())))
        if isinstance(module, (nn.Conv, nn.Dense)):
            inputs = args[0]
            if isinstance(module, nn.Conv):
                taps = math.prod(module.kernel_size) * inputs.shape[-1] // module.feature_group_count
            else:
                taps = inputs.shape[-1]
            own = math.prod(outputs.shape[1:]) * taps
            for depth in range(len(path) + 1):
                macs[path[:depth]] = macs.get(path[:depth], 0) + own
        return outputs

    with nn.intercept_methods(record):
        variables = abstract_variables(model, input_size, channels)
    sizes = {
        tuple(key.key for key in keys): math.prod(leaf.shape)
        for keys, leaf in jax.tree_util.tree_flatten_with_path(variables["params"])[0]
    }
    return [
        ModuleRow(
            path,
            kind,
            shape,
            sum(size for keys, size in sizes.items() if keys[: len(path)] == path),
            macs.get(path, 0),
        )
        for path, (kind, shape) in called.items()
    ]


def profile_model(model: nn.Module, input_size: int, channels: int = 3) -> ModelProfile:
    """Count parameters and MACs of ``model`` for one image of ``input_size`` in a single shape trace."""
    whole = module_rows(model, input_size, channels)[0]
    return ModelProfile(params=whole.params, macs=whole.macs)
