"""The train state: one pytree holding everything a step changes, so it can be donated and checkpointed."""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax import linen as nn


@flax.struct.dataclass
class TrainState:
    """Step counter, parameters, BatchNorm running statistics, optimizer state and the run's RNG key.

    ``ema_params`` is an exponential moving average of ``params`` (or ``None`` when disabled). The
    RNG key never changes: each step folds in its step number, so a resumed run draws the same
    dropout masks as an uninterrupted one.
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array
    ema_params: Any = None

    def variables(self, use_ema: bool = False) -> dict:
        """``{'params', 'batch_stats'}`` for ``model.apply``; ``use_ema`` swaps in the averaged parameters."""
        return {"params": self.ema_params if use_ema else self.params, "batch_stats": self.batch_stats}


def init_variables(model: nn.Module, rng: jax.Array, input_shape: tuple[int, ...]) -> dict:
    """Initialise ``{'params', 'batch_stats'}`` from a dummy batch of ``input_shape`` (NHWC)."""
    return dict(model.init({"params": rng}, jnp.zeros(input_shape, jnp.float32), train=False))


def create_train_state(
    variables: dict, tx: optax.GradientTransformation, rng: jax.Array, use_ema: bool = False
) -> TrainState:
    """A fresh state at step 0 around existing variables (from init or from a pretrained checkpoint)."""
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        rng=rng,
        ema_params=jax.tree_util.tree_map(jnp.copy, params) if use_ema else None,
    )
