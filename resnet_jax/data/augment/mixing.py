"""Cutout, Mixup and CutMix on the device, inside the train step, over the global batch.

Drawn from the step's key (a function of the seed and the step), after normalisation, so every
dataset gets them, a resumed run draws the same, and the process count changes nothing (the global
batch is one array whatever its sharding).

- Cutout (DeVries & Taylor 2017): one ``size`` x ``size`` square per image, its centre uniform over
  the pixels, clipped at the border, set to 0 (the normalised mean).
- Mixup (Zhang et al. 2018): lambda ~ Beta(alpha, alpha) once per batch; each image becomes
  lambda x + (1 - lambda) x[perm] for a random permutation of the batch.
- CutMix (Yun et al. 2019): with probability ``cutmix_probability`` per batch, lambda ~ Beta(alpha,
  alpha), a box of sides sqrt(1 - lambda) H and W (centre uniform, clipped) is pasted from x[perm], and
  lambda becomes the kept area's fraction.

The loss is lambda CE(y) + (1 - lambda) CE(y[perm]) (``Mixed``); training top-1 counts y.

Before them, the batch augmentations a run names in ``batch_augmentations``: label-preserving functions
``(images, key) -> images`` registered once, by name, with ``register_batch_augmentation``, from this package or
any module of one's own (``tests/toy_augmentation.py``), each drawing from its own key.
"""

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from resnet_jax.errors import not_registered

MIXING_STREAM = 2**30  # folded into the step's key; the dropout keys use the microbatch indices 0, 1, ...
NAMED_STREAM = 2**20  # folded into the mixing key, plus the position of a named augmentation in the run's list
BatchAugmentation = Callable[[jax.Array, jax.Array], jax.Array]  # (normalised images, key) -> images
BATCH_AUGMENTATIONS: dict[str, BatchAugmentation] = {}


def register_batch_augmentation(name: str, augmentation: BatchAugmentation) -> None:
    """Make ``augmentation`` available to runs as ``batch_augmentations=(name,)``; a name taken is refused."""
    if name in BATCH_AUGMENTATIONS:
        raise ValueError(f"batch augmentation {name!r} is registered already; choose another name")
    BATCH_AUGMENTATIONS[name] = augmentation


def check_batch_augmentations(names: tuple[str, ...]) -> str:
    """Why ``names`` cannot be applied (one is not registered, with the closest name), or ''."""
    return not_registered("batch augmentation", names, BATCH_AUGMENTATIONS)


@dataclasses.dataclass(frozen=True)
class Mixing:
    """The batch augmentations of a run: 0 turns each off; ``named``: the registered ones, applied first."""

    cutout_size: int = 0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    cutmix_probability: float = 1.0
    named: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Whether any batch augmentation is on."""
        return self.cutout_size > 0 or self.mixes or bool(self.named)

    @property
    def mixes(self) -> bool:
        """Whether labels get partners (Mixup or CutMix)."""
        return self.mixup_alpha > 0 or (self.cutmix_alpha > 0 and self.cutmix_probability > 0)


NO_MIXING = Mixing()


class Mixed(NamedTuple):
    """A mixed batch (a pytree): images, each example's partner index and the weight of its own label."""

    images: jax.Array
    partner: jax.Array
    weight: jax.Array


def cutout_mask(key: jax.Array, batch: int, height: int, width: int, size: int) -> jax.Array:
    """(batch, height, width, 1) of 1.0 outside each image's square and 0.0 inside it."""
    centre_key_y, centre_key_x = jax.random.split(key)
    centre_y = jax.random.randint(centre_key_y, (batch, 1, 1, 1), 0, height)
    centre_x = jax.random.randint(centre_key_x, (batch, 1, 1, 1), 0, width)
    return 1.0 - _box(centre_y, centre_x, size, size, height, width)


def _box(centre_y, centre_x, box_height, box_width, height: int, width: int) -> jax.Array:
    """1.0 on rows [cy - h//2, cy + h//2) and columns [cx - w//2, cx + w//2), clipped; else 0.0."""
    rows = jnp.arange(height)[None, :, None, None]
    columns = jnp.arange(width)[None, None, :, None]
    inside_rows = (rows >= centre_y - box_height // 2) & (rows < centre_y + box_height // 2)
    inside_columns = (columns >= centre_x - box_width // 2) & (columns < centre_x + box_width // 2)
    return (inside_rows & inside_columns).astype(jnp.float32)


def mix(images: jax.Array, key: jax.Array, mixing: Mixing) -> Mixed:
    """The batch after the named augmentations, Cutout, then Mixup or CutMix, as ``mixing`` says (see the module's
    docstring)."""
    for position, name in enumerate(mixing.named):
        images = BATCH_AUGMENTATIONS[name](images, jax.random.fold_in(key, NAMED_STREAM + position))
    batch, height, width = images.shape[:3]
    cutout_key, permutation_key, mixup_key, cutmix_key = jax.random.split(key, 4)
    if mixing.cutout_size:
        images = images * cutout_mask(cutout_key, batch, height, width, mixing.cutout_size).astype(images.dtype)
    partner = jax.random.permutation(permutation_key, batch) if mixing.mixes else jnp.arange(batch)
    weight = jnp.ones((), jnp.float32)
    if mixing.mixup_alpha > 0:
        weight = jax.random.beta(mixup_key, mixing.mixup_alpha, mixing.mixup_alpha)
        images = (weight * images + (1 - weight) * images[partner]).astype(images.dtype)
    elif mixing.cutmix_alpha > 0 and mixing.cutmix_probability > 0:
        images, weight = _cutmix(images, partner, cutmix_key, mixing)
    return Mixed(images, partner, weight)


def _cutmix(images: jax.Array, partner: jax.Array, key: jax.Array, mixing: Mixing) -> tuple[jax.Array, jax.Array]:
    """Yun et al.'s box pasted from the partners with probability ``cutmix_probability``; the new images
    and the kept area's fraction (1 where the batch was left alone)."""
    batch, height, width = images.shape[:3]
    apply_key, lambda_key, y_key, x_key = jax.random.split(key, 4)
    drawn = jax.random.beta(lambda_key, mixing.cutmix_alpha, mixing.cutmix_alpha)
    ratio = jnp.sqrt(1.0 - drawn)
    box_height, box_width = (ratio * height).astype(jnp.int32), (ratio * width).astype(jnp.int32)
    centre_y = jax.random.randint(y_key, (), 0, height)
    centre_x = jax.random.randint(x_key, (), 0, width)
    box = _box(centre_y, centre_x, box_height, box_width, height, width)
    box = box * jax.random.bernoulli(apply_key, mixing.cutmix_probability).astype(jnp.float32)
    mixed = images * (1 - box).astype(images.dtype) + images[partner] * box.astype(images.dtype)
    return mixed, 1.0 - box.mean()
