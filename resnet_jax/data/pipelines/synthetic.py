"""The ``synthetic`` dataset: random images whose label follows a fixed, learnable rule.

Each class has a fixed mean colour; an image is that colour plus Gaussian pixel noise, stored as uint8
like every dataset's images (``normalisation()`` maps it back), so a network must pool over space to
read the label. Train batches are a pure function of ``(seed, step)``: a
resumed run sees exactly the batches an uninterrupted one would, on any number of processes.
"""

import numpy as np

from resnet_jax.data.augment.normalisation import Normalisation
from resnet_jax.data.streams import SyntheticStream

DEFAULT_IMAGE_SIZE, DEFAULT_NUM_CLASSES = 16, 10  # when image_size and num_classes are 0 (the dataset's)

RULE_SEED = 20161  # the class colours are the same for every run, so the rule is fixed
PIXEL_ZERO, PIXEL_UNIT = 127.5, 24.0  # the uint8 levels of colour value 0 and of one unit (+-5.3 units fit)


def class_colours(num_classes: int, channels: int) -> np.ndarray:
    """The fixed per-class mean colour, shape (num_classes, channels)."""
    return np.random.default_rng(RULE_SEED).normal(size=(num_classes, channels)).astype(np.float32)


def make_examples(rng: np.random.Generator, count: int, num_classes: int, image_shape, noise: float) -> dict:
    """``count`` labelled examples: images (NHWC uint8) and int32 labels."""
    labels = rng.integers(0, num_classes, size=count).astype(np.int32)
    colours = class_colours(num_classes, image_shape[-1])[labels][:, None, None, :]
    values = colours + noise * rng.standard_normal((count,) + tuple(image_shape), dtype=np.float32)
    levels = np.clip(np.round(PIXEL_ZERO + PIXEL_UNIT * values), 0, 255)
    return {"image": levels.astype(np.uint8), "label": labels}


def normalisation(channels: int) -> Normalisation:
    """Maps the stored uint8 levels back to colour values: (level - PIXEL_ZERO) / PIXEL_UNIT."""
    return Normalisation(np.full(channels, PIXEL_ZERO / 255), np.full(channels, PIXEL_UNIT / 255))


def train_batch(seed: int, step: int, global_batch: int, num_classes: int, image_shape, noise: float) -> dict:
    """The whole global batch of ``step``, identical on every process."""
    rng = np.random.default_rng([seed, SyntheticStream.TRAIN, step])
    return make_examples(rng, global_batch, num_classes, image_shape, noise)


def eval_split(seed: int, num_examples: int, num_classes: int, image_shape, noise: float) -> dict:
    """The fixed eval split of ``num_examples`` examples."""
    rng = np.random.default_rng([seed, SyntheticStream.EVAL])
    return make_examples(rng, num_examples, num_classes, image_shape, noise)
