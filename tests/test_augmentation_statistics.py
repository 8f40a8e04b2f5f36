"""The augmentations' distributions, over thousands of draws, against what the papers and torchvision do:
CIFAR crops uniform over every offset and fair flips (He et al. 2016); random-resized crops with
torchvision's scale and log-aspect distributions (a sampler written here from its documented algorithm)."""

import math

import numpy as np
import pytest
from scipy import stats

from resnet_jax.data.augment import crops as streamed_crops
from resnet_jax.data.augment import pad_crop
from resnet_jax.data.sources import tfds_source

tf = tfds_source.tensorflow()
SIDE, PAD = 8, 4  # 8x8 images padded by 4: (2 * 4 + 1)^2 = 81 crop positions
P_FLOOR = 1e-3  # the draws are seeded, so each test is deterministic; this bounds what "uniform" may mean


def crop_positions_and_flips(outputs: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each output, the (top, left) offset and flip that produce it from the zero-padded ``image``."""
    padded = np.pad(image, PAD)
    candidates = {}
    for top in range(2 * PAD + 1):
        for left in range(2 * PAD + 1):
            crop = padded[top : top + SIDE, left : left + SIDE]
            candidates[(top, left, False)] = crop
            candidates[(top, left, True)] = crop[:, ::-1]
    keys = list(candidates)
    stacked = np.stack([candidates[key] for key in keys]).reshape(len(keys), -1)
    matches = (outputs.reshape(len(outputs), 1, -1) == stacked[None]).all(axis=-1)
    assert (matches.sum(axis=1) == 1).all(), "every output is exactly one crop of the padded image"
    found = [keys[i] for i in matches.argmax(axis=1)]
    return np.array([(top, left) for top, left, _ in found]), np.array([flip for *_, flip in found])


def test_cifar_crops_are_uniform_over_the_81_offsets_and_flips_are_fair():
    image = (np.arange(SIDE * SIDE).reshape(SIDE, SIDE) + 1).astype(np.uint8)  # every pixel distinct, none 0
    augmentation = pad_crop.Augmentation(crop_padding=PAD, pad_mode="constant", random_flip=True)
    batch, steps = 512, 16  # 8,192 draws: about 100 per offset
    outputs = []
    for step in range(steps):
        draws = pad_crop.draws(0, step, batch, augmentation)
        outputs.append(
            np.asarray(pad_crop.pad_crop_flip(np.repeat(image[None, :, :, None], batch, 0), draws, augmentation))
        )
    positions, flips = crop_positions_and_flips(np.concatenate(outputs)[..., 0], image)
    counts = np.zeros((2 * PAD + 1, 2 * PAD + 1))
    np.add.at(counts, (positions[:, 0], positions[:, 1]), 1)
    assert counts.min() > 0
    assert stats.chisquare(counts.ravel()).pvalue > P_FLOOR
    assert stats.binomtest(int(flips.sum()), len(flips), 0.5).pvalue > P_FLOOR
    # Flips are independent of the offset: each half of the grid flips about half the time.
    left_half = positions[:, 1] < PAD
    assert (
        stats.chi2_contingency(
            [
                [np.sum(flips & left_half), np.sum(~flips & left_half)],
                [np.sum(flips & ~left_half), np.sum(~flips & ~left_half)],
            ]
        ).pvalue
        > P_FLOOR
    )


def torchvision_window(rng: np.random.Generator, height: int, width: int) -> tuple[int, int]:
    """torchvision's RandomResizedCrop.get_params (scale (0.08, 1), ratio (3/4, 4/3)): (crop height, width)."""
    area = height * width
    for _ in range(10):
        target_area = area * rng.uniform(0.08, 1.0)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return h, w
    ratio = width / height  # fallback: the whole image's centre at the nearest allowed aspect
    if ratio < 3 / 4:
        return int(round(width / (3 / 4))), width
    if ratio > 4 / 3:
        return height, int(round(height * 4 / 3))
    return height, width


@pytest.mark.slow
@pytest.mark.parametrize(
    "height, width",
    [(300, 400), pytest.param(256, 256, marks=pytest.mark.extended)],  # a square one: the same code
)
def test_random_resized_crops_follow_torchvisions_scale_and_log_aspect_distributions(height, width):
    draws = 2000
    rng = np.random.default_rng(0)
    reference = np.array([torchvision_window(rng, height, width) for _ in range(draws)], dtype=np.float64)
    shape = tf.constant([height, width, 3])
    ours = []
    for seed in range(draws):
        top, left, h, w = (int(v) for v in streamed_crops.random_resized_window(shape, tf.constant([seed, 7])))
        assert 0 <= top and top + h <= height and 0 <= left and left + w <= width
        ours.append((h, w))
    ours = np.array(ours, dtype=np.float64)
    for sample in (ours, reference):
        scale = sample[:, 0] * sample[:, 1] / (height * width)
        assert scale.min() >= 0.08 - 0.01 and scale.max() <= 1.0
    scale_ours, scale_reference = (s[:, 0] * s[:, 1] / (height * width) for s in (ours, reference))
    log_aspect_ours, log_aspect_reference = (np.log(s[:, 1] / s[:, 0]) for s in (ours, reference))
    assert stats.ks_2samp(scale_ours, scale_reference).pvalue > P_FLOOR
    assert stats.ks_2samp(log_aspect_ours, log_aspect_reference).pvalue > P_FLOOR
