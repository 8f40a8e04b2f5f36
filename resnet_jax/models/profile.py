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


def profile_model(model: nn.Module, input_size: int, channels: int = 3) -> ModelProfile:
    """Count parameters and MACs of ``model`` for one image of ``input_size`` in a single shape trace."""
    macs = 0

    def record(next_fun, args, kwargs, context):
        nonlocal macs
        outputs = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name == "__call__" and isinstance(module, (nn.Conv, nn.Dense)):
            inputs = args[0]
            if isinstance(module, nn.Conv):
                taps = math.prod(module.kernel_size) * inputs.shape[-1] // module.feature_group_count
            else:
                taps = inputs.shape[-1]
            macs += math.prod(outputs.shape[1:]) * taps
        return outputs

    with nn.intercept_methods(record):
        variables = abstract_variables(model, input_size, channels)
    params = sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(variables["params"]))
    return ModelProfile(params=params, macs=macs)
