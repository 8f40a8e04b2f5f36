"""Random Erasing (Zhong et al. 2017, "Random Erasing Data Augmentation", Algorithm 1) on uint8 batches, in JAX.

Each image is erased with probability ``p``. Erasing draws a rectangle: area ``Se = U(sl, sh) * S``
(``S = H * W``), aspect ratio ``re = U(r1, 1/r1)``, height ``sqrt(Se * re)`` and width ``sqrt(Se / re)``,
and a top-left corner uniform over the whole image. A rectangle that does not fit inside the image is
drawn again, size and corner both, until one fits (the paper's ``while True`` loop); its pixels then
get the fill. Sides are rounded to whole pixels (at least one) and corners are whole pixels.

The paper loops without bound; here each image gets a fixed number of draws and the first that fits
is used. That number is computed from the chance that one draw fits (``fit_probability``) so that an
image due for erasing is left intact with probability below ``MISS_PROBABILITY``: with the paper's
values about 31% of draws fit a 28x28 image, and 85 draws (75 plus a margin) are made. Draws are made for a whole batch
from one key, so (seed, step) determines every erased pixel.

Fills: 'random' gives every erased pixel and channel an independent value in [0, 255] (the paper);
'mean' the train split's mean colour (what ``torchvision.transforms.RandomErasing(value=0)`` after
normalisation amounts to); 'zero' black; 'constant' the value ``fill_value`` after normalisation, as the
authors' released scripts fill (0.4914, CIFAR-10's red mean, on every dataset), here rounded to the nearest
uint8 level (within 0.5 / 255 / std of it: 0.0064 after MNIST's normalisation).

``sampler='authors'`` draws as the authors' released ``transforms.RandomErasing`` (github.com/zhunzhong07/
Random-Erasing) does instead of as Algorithm 1: up to 100 (area, aspect ratio) draws, the first whose sides
are both smaller than the image's taken, then a corner uniform over the positions where that rectangle fits;
an image whose 100 draws all fail is left as it is. Algorithm 1 redraws the corner with the size, so its
rectangles lean towards the small ones that fit more positions; the released code's do not.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from resnet_jax.data.streams import Stream, stream_key

FILLS = ("random", "mean", "zero", "constant")
SAMPLERS = ("paper", "authors")
RELEASED_ATTEMPTS = 100  # the authors' transforms.RandomErasing tries this many sizes
MISS_PROBABILITY = 1e-12  # chance that an image due for erasing finds no fitting rectangle in its draws
MAX_ATTEMPTS = 10_000
GRID = 512  # points per axis of the (area, aspect ratio) grid that fit_probability averages over


@dataclasses.dataclass(frozen=True)
class RandomErasing:
    """Random Erasing's settings; the defaults are the paper's (p = 0 switches it off)."""

    probability: float = 0.0  # p
    area_range: tuple[float, float] = (0.02, 0.4)  # (sl, sh): erased fraction of the image area
    min_aspect_ratio: float = 0.3  # r1: aspect ratios (height / width) lie in [r1, 1 / r1]
    fill: str = "random"  # 'random', 'mean', 'zero' or 'constant'
    fill_value: float = 0.0  # 'constant': the erased pixels' value after normalisation (the authors': 0.4914)
    sampler: str = "paper"  # 'paper' (Algorithm 1) or 'authors' (their released code)


def _sides(area, ratio):
    """Rectangle sides in whole pixels (at least 1) from an area in pixels and an aspect ratio (height / width)."""
    return np.maximum(np.round(np.sqrt(area * ratio)), 1), np.maximum(np.round(np.sqrt(area / ratio)), 1)


def fit_probability(height: int, width: int, erasing: RandomErasing) -> float:
    """The chance that one draw (area, aspect ratio, corner) fits inside a ``height`` x ``width`` image.

    The corner is uniform over the image, so a ``h`` x ``w`` rectangle fits with probability
    ``(height - h + 1)(width - w + 1) / (height * width)``; this averages that over a midpoint grid of
    areas and aspect ratios.
    """
    low, high = erasing.area_range
    midpoints = (np.arange(GRID) + 0.5) / GRID
    area = (low + (high - low) * midpoints[:, None]) * height * width
    r1 = erasing.min_aspect_ratio
    h, w = _sides(area, r1 + (1 / r1 - r1) * midpoints[None, :])
    return float(np.mean(np.clip(height - h + 1, 0, None) * np.clip(width - w + 1, 0, None)) / (height * width))


def attempts_needed(height: int, width: int, erasing: RandomErasing) -> int:
    """Draws per image so that a fitting rectangle is missed with probability below ``MISS_PROBABILITY``."""
    fits = 0.9 * fit_probability(height, width, erasing)  # 10% margin for the grid's approximation
    attempts = math.ceil(math.log(MISS_PROBABILITY) / math.log1p(-fits)) if 0 < fits < 1 else 1
    if fits == 0 or attempts > MAX_ATTEMPTS:
        raise ValueError(
            f"random_erasing area_range={tuple(erasing.area_range)} and min_aspect_ratio={erasing.min_aspect_ratio} "
            f"give rectangles that almost never fit a {height}x{width} image (a draw fits with probability "
            f"{fits / 0.9:.2g}); use a smaller area range or aspect ratios closer to 1"
        )
    return attempts


def draw_rectangles(key: jax.Array, count: int, height: int, width: int, erasing: RandomErasing) -> dict:
    """For each of ``count`` images: ``erase`` (bool) and the rectangle's ``top``, ``left``, ``height``, ``width``,
    drawn as ``erasing.sampler`` says."""
    area_key, ratio_key, top_key, left_key, erase_key = jax.random.split(key, 5)
    released = erasing.sampler == "authors"
    shape = (count, RELEASED_ATTEMPTS if released else attempts_needed(height, width, erasing))
    low, high = erasing.area_range
    area = jax.random.uniform(area_key, shape, minval=low, maxval=high) * (height * width)
    r1 = erasing.min_aspect_ratio
    ratio = jax.random.uniform(ratio_key, shape, minval=r1, maxval=1 / r1)

    def side(value):
        return jnp.maximum(jnp.round(jnp.sqrt(value)).astype(jnp.int32), 1)

    sizes = {"height": side(area * ratio), "width": side(area / ratio)}
    if released:  # the first size with both sides below the image's, then a corner where it fits
        fits = (sizes["height"] < height) & (sizes["width"] < width)
        chosen = _first(fits, sizes)
        corners = {
            "top": _below(top_key, height - chosen["height"] + 1),
            "left": _below(left_key, width - chosen["width"] + 1),
        }
        chosen = {**chosen, **corners}
    else:  # Algorithm 1: size and corner drawn together until the rectangle lies inside the image
        corners = {
            "top": jax.random.randint(top_key, shape, 0, height, jnp.int32),
            "left": jax.random.randint(left_key, shape, 0, width, jnp.int32),
        }
        fits = (corners["top"] + sizes["height"] <= height) & (corners["left"] + sizes["width"] <= width)
        chosen = _first(fits, {**sizes, **corners})
    erase = (jax.random.uniform(erase_key, (count,)) < erasing.probability) & jnp.any(fits, axis=1)
    return {"erase": erase, **chosen}


def _first(fits: jax.Array, draws: dict) -> dict:
    """Each row's values at its first fitting draw (the first draw where none fits; that image is not erased)."""
    first_fit = jnp.argmax(fits, axis=1)
    return {name: jnp.take_along_axis(values, first_fit[:, None], axis=1)[:, 0] for name, values in draws.items()}


def _below(key: jax.Array, bounds: jax.Array) -> jax.Array:
    """One integer uniform in [0, bound) for each of ``bounds`` (positive int32)."""
    return jax.random.randint(key, bounds.shape, 0, jnp.maximum(bounds, 1), jnp.int32)


def fill_values(
    key: jax.Array, image_shape: tuple[int, ...], count: int, erasing: RandomErasing, fill_colour: np.ndarray | None
) -> jax.Array:
    """What erased pixels become: per-pixel random uint8 values for 'random', else one broadcastable colour
    (``fill_colour``, from ``fill_colour_for``, for 'mean' and 'constant')."""
    if erasing.fill == "random":
        return jax.random.randint(key, (count, *image_shape), 0, 256, jnp.int32).astype(jnp.uint8)
    if erasing.fill in ("mean", "constant"):
        return jnp.asarray(np.clip(np.round(fill_colour), 0, 255).astype(np.uint8))
    return jnp.zeros(image_shape[-1:], jnp.uint8)


def fill_colour_for(erasing: RandomErasing, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The colour (uint8 scale, per channel) of a 'mean' or 'constant' fill, given the dataset's normalisation
    ``(x / 255 - mean) / std``: the mean itself, or the pixel that normalises to ``fill_value``."""
    value = erasing.fill_value if erasing.fill == "constant" else 0.0
    return (np.asarray(mean, np.float64) + value * np.asarray(std, np.float64)) * 255


def erase(images: jax.Array, rectangles: dict, fill: jax.Array) -> jax.Array:
    """Images (uint8 NHWC) with each chosen rectangle replaced by ``fill`` where ``erase`` is set."""
    images = jnp.asarray(images)
    rows, columns = jnp.arange(images.shape[1]), jnp.arange(images.shape[2])

    def inside(positions, start, size):
        start, size = jnp.asarray(start), jnp.asarray(size)
        return (positions >= start[:, None]) & (positions < (start + size)[:, None])

    in_rows = inside(rows, rectangles["top"], rectangles["height"])
    in_columns = inside(columns, rectangles["left"], rectangles["width"])
    mask = jnp.asarray(rectangles["erase"])[:, None, None] & in_rows[:, :, None] & in_columns[:, None, :]
    return jnp.where(mask[..., None], jnp.broadcast_to(fill, images.shape), images)


def erase_batch(images: jax.Array, seed: int, step, settings: RandomErasing, fill_colour) -> jax.Array:
    """Random Erasing of the global batch at ``step``, drawn for the whole batch from (seed, step)."""
    rectangle_key, fill_key = jax.random.split(stream_key(seed, Stream.ERASING, step))
    count, height, width = images.shape[:3]
    drawn = draw_rectangles(rectangle_key, count, height, width, settings)
    return erase(images, drawn, fill_values(fill_key, images.shape[1:], count, settings, fill_colour))
