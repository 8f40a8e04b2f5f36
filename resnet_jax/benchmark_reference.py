"""The bare-Flax baseline of ``benchmark --reference``: a minimal ResNet train step, written for the benchmark.

In the style of flax's examples/imagenet: stock ``nn.Conv`` and ``nn.BatchNorm`` (statistics over the
whole batch), softmax cross-entropy, the optimizer applied to the gradients, one ``jax.jit`` with the
state donated. None of what this codebase adds (grouped BatchNorm with float32 statistics, per-stage
gradient norms, metric sums, microbatches, EMA), so timing both steps in one process shows what those
cost. The architecture is read from the registry, so both steps train the same network (the
post-activation ones: torchvision's layouts, He et al.'s CIFAR nets with shortcut A or none, ResNeXt-29).
"""

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from resnet_jax.models import get_spec
from resnet_jax.models.blocks import BOTTLENECK_EXPANSION


class Block(nn.Module):
    """A post-activation basic or bottleneck block, stride on the 3x3."""

    bottleneck: bool
    inner: int
    out: int
    stride: int
    groups: int
    shortcut: str
    dtype: Any

    @nn.compact
    def __call__(self, x):
        conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype)
        norm = functools.partial(nn.BatchNorm, use_running_average=False, momentum=0.9, dtype=self.dtype)
        pad1 = ((1, 1), (1, 1))
        if self.bottleneck:
            y = nn.relu(norm()(conv(self.inner, (1, 1))(x)))
            y = conv(self.inner, (3, 3), (self.stride, self.stride), pad1, feature_group_count=self.groups)(y)
            y = nn.relu(norm()(y))
            y = norm()(conv(self.out, (1, 1))(y))
        else:
            y = nn.relu(norm()(conv(self.inner, (3, 3), (self.stride, self.stride), pad1)(x)))
            y = norm()(conv(self.out, (3, 3), padding=pad1)(y))
        if self.shortcut == "none":
            return nn.relu(y)
        if x.shape != y.shape and self.shortcut == "A":
            x = jnp.pad(x[:, :: self.stride, :: self.stride], ((0, 0),) * 3 + ((0, self.out - x.shape[-1]),))
        elif x.shape != y.shape:
            x = norm()(conv(self.out, (1, 1), (self.stride, self.stride))(x))
        return nn.relu(y + x)


class MinimalResNet(nn.Module):
    """The registered architecture's layers, nothing else; float32 logits."""

    stage_sizes: Sequence[int]
    num_classes: int
    block: str
    stem: str
    shortcut: str
    dtype: Any
    widths: Sequence[int] = (64, 128, 256, 512)
    stem_width: int = 64
    groups: int = 1
    width_per_group: int = 64
    width_multiplier: int = 1

    @nn.compact
    def __call__(self, x):
        x = x.astype(self.dtype)
        if self.stem == "imagenet":
            x = nn.Conv(self.stem_width, (7, 7), (2, 2), ((3, 3), (3, 3)), use_bias=False, dtype=self.dtype)(x)
        else:
            x = nn.Conv(self.stem_width, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, dtype=self.dtype)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=False, momentum=0.9, dtype=self.dtype)(x))
        if self.stem == "imagenet":
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        bottleneck = self.block == "bottleneck"
        for stage, blocks in enumerate(self.stage_sizes):
            base = self.widths[stage]
            k = self.width_multiplier
            inner = (int(base * self.width_per_group / 64) * self.groups if bottleneck else base) * k
            out = base * BOTTLENECK_EXPANSION if bottleneck else base * k
            for index in range(blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                x = Block(bottleneck, inner, out, stride, self.groups, self.shortcut, self.dtype)(x)
        return nn.Dense(self.num_classes, dtype=jnp.float32)(jnp.mean(x.astype(jnp.float32), axis=(1, 2)))


class State(train_state.TrainState):
    """flax's TrainState plus the BatchNorm statistics."""

    batch_stats: Any


def minimal_model(model_name: str, num_classes: int, dtype: str) -> MinimalResNet:
    """The bare-Flax twin of registered model ``model_name``; an error for the layouts it does not cover."""
    kwargs = dict(get_spec(model_name).kwargs)
    covered = {field.name for field in dataclasses.fields(MinimalResNet)}
    variant = {key: value for key, value in kwargs.items() if key not in covered}
    if variant or kwargs["stem"] not in ("imagenet", "cifar") or kwargs["shortcut"] not in ("A", "B", "none"):
        raise ValueError(
            f"--reference has a bare-Flax twin for torchvision-style post-activation ResNets, ResNeXts and "
            f"plain nets only, and {model_name} is a variant ({kwargs}). Benchmark it without --reference, "
            "or pick e.g. resnet50 or cifar_resnet20."
        )
    return MinimalResNet(num_classes=num_classes, dtype=dtype, **kwargs)


def create_state(model: MinimalResNet, tx: optax.GradientTransformation, image_shape: Sequence[int]) -> State:
    """Initialised parameters, BatchNorm statistics and optimizer state."""
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, *image_shape), jnp.float32))
    return State.create(apply_fn=model.apply, params=variables["params"], tx=tx, batch_stats=variables["batch_stats"])


def train_step(state: State, batch: dict[str, jax.Array]) -> tuple[State, dict[str, jax.Array]]:
    """One SGD step on the batch's mean cross-entropy (uint8 images scaled to about [-2, 2] first);
    returns the new state, loss and accuracy."""
    images = (batch["image"].astype(jnp.float32) - 127.5) / 64.0

    def loss_fn(params):
        logits, updates = state.apply_fn(
            {"params": params, "batch_stats": state.batch_stats}, images, mutable=["batch_stats"]
        )
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
        return loss, (logits, updates["batch_stats"])

    (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
    return state, {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"])}
