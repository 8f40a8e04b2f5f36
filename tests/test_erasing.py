"""Random Erasing against an independent implementation of Zhong et al.'s Algorithm 1, and in the pipeline."""

import math

import jax
import numpy as np
import pytest
from conftest import in_memory_batches
from scipy import stats

from configs import default
from resnet_jax import config_schema
from resnet_jax.data.augment import erasing, pad_crop
from resnet_jax.errors import ConfigError

PAPER = erasing.RandomErasing(probability=0.5, area_range=(0.02, 0.4), min_aspect_ratio=0.3)
DRAWS = 20_000


def algorithm1(rng: np.random.Generator, height: int, width: int, p: float, sl: float, sh: float, r1: float):
    """Zhong et al. 2017, Algorithm 1, written from the paper: None (not erased) or (top, left, h, w).

    Sides are rounded to whole pixels (at least 1) and the corner is a whole pixel, as the package
    documents; a rectangle that does not fit is drawn again, size and corner, until one fits.
    """
    if rng.uniform(0, 1) >= p:
        return None
    while True:
        area = rng.uniform(sl, sh) * height * width
        ratio = rng.uniform(r1, 1 / r1)
        h = max(1, int(round(math.sqrt(area * ratio))))
        w = max(1, int(round(math.sqrt(area / ratio))))
        x, y = rng.integers(0, width), rng.integers(0, height)
        if x + w <= width and y + h <= height:
            return y, x, h, w


def _reference(height, width, settings, count=DRAWS, seed=0):
    rng = np.random.default_rng(seed)
    low, high = settings.area_range
    draws = [
        algorithm1(rng, height, width, settings.probability, low, high, settings.min_aspect_ratio) for _ in range(count)
    ]
    return np.array([d for d in draws if d is not None]).T, sum(d is not None for d in draws) / count


def _ours(height, width, settings, count=DRAWS, seed=0):
    drawn = {
        k: np.asarray(v)
        for k, v in erasing.draw_rectangles(jax.random.key(seed), count, height, width, settings).items()
    }
    erased = drawn["erase"]
    return np.array([drawn[k][erased] for k in ("top", "left", "height", "width")]), erased.mean()


@pytest.mark.parametrize("height, width", [(28, 28), (32, 32), (12, 30)])
def test_the_erased_fraction_area_and_aspect_ratio_follow_algorithm_1(height, width):
    (top, left, h, w), fraction = _ours(height, width, PAPER)
    (ref_top, ref_left, ref_h, ref_w), ref_fraction = _reference(height, width, PAPER)
    bound = 4 * math.sqrt(0.25 / DRAWS)  # 4 standard deviations of a binomial fraction
    assert abs(fraction - 0.5) < bound and abs(ref_fraction - 0.5) < bound
    for ours, reference in (
        (h * w / (height * width), ref_h * ref_w / (height * width)),  # erased area fraction
        (h / w, ref_h / ref_w),  # aspect ratio
        (top, ref_top),
        (left, ref_left),
    ):
        assert stats.ks_2samp(ours, reference).pvalue > 1e-3


def test_the_statistics_test_tells_the_paper_from_a_common_shortcut():
    # Released code often keeps any rectangle smaller than the image and then places it where it fits;
    # the paper redraws when the corner it drew does not fit, which favours small rectangles.
    rng = np.random.default_rng(1)
    areas = []
    while len(areas) < DRAWS // 2:
        area = rng.uniform(0.02, 0.4) * 784
        ratio = rng.uniform(0.3, 1 / 0.3)
        h, w = max(1, round(math.sqrt(area * ratio))), max(1, round(math.sqrt(area / ratio)))
        if h <= 28 and w <= 28:
            areas.append(h * w / 784)
    (_, _, h, w), _ = _ours(28, 28, PAPER)
    assert stats.ks_2samp(h * w / 784, areas).pvalue < 1e-6


@pytest.mark.parametrize("height, width", [(28, 28), (8, 8), (5, 17)])
@pytest.mark.parametrize("area_range, min_aspect_ratio", [((0.02, 0.4), 0.3), ((0.3, 0.9), 0.1)])
def test_rectangles_always_lie_inside_the_image(height, width, area_range, min_aspect_ratio):
    settings = erasing.RandomErasing(1.0, area_range, min_aspect_ratio)
    (top, left, h, w), fraction = _ours(height, width, settings, count=5_000)
    assert fraction > 0.99
    assert (top >= 0).all() and (left >= 0).all() and (h >= 1).all() and (w >= 1).all()
    assert (top + h <= height).all() and (left + w <= width).all()


def test_the_same_key_gives_the_same_draws_and_another_key_others():
    first, again, other = (_ours(28, 28, PAPER, count=256, seed=seed) for seed in (3, 3, 4))
    np.testing.assert_array_equal(first[0], again[0])
    assert first[0].shape != other[0].shape or not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("fill", erasing.FILLS)
def test_erasing_replaces_exactly_the_rectangle_with_the_fill(fill):
    rng = np.random.default_rng(0)
    images = rng.integers(1, 255, (3, 6, 7, 2), dtype=np.uint8)
    rectangles = {
        "erase": np.array([True, False, True]),
        "top": np.array([1, 0, 0]),
        "left": np.array([2, 0, 6]),
        "height": np.array([3, 6, 6]),
        "width": np.array([4, 7, 1]),
    }
    fill_colour = np.array([100.4, 20.6])
    settings = erasing.RandomErasing(1.0, fill=fill)
    fill_values = erasing.fill_values(jax.random.key(1), (6, 7, 2), 3, settings, fill_colour)
    out = np.asarray(erasing.erase(images, rectangles, fill_values))
    inside = np.zeros((3, 6, 7), bool)
    inside[0, 1:4, 2:6] = True
    inside[2, :, 6:] = True
    np.testing.assert_array_equal(out[~inside], images[~inside])  # nothing outside moves, image 1 not erased
    erased = out[inside]
    if fill == "random":
        assert len(np.unique(erased)) > 20 and not np.array_equal(erased, images[inside])
    else:
        expected = {"mean": [100, 21], "constant": [100, 21], "zero": [0, 0]}[fill]  # the colour given, rounded
        np.testing.assert_array_equal(erased, np.broadcast_to(expected, erased.shape))


def test_random_fill_values_are_uniform_bytes():
    values = np.asarray(erasing.fill_values(jax.random.key(5), (32, 32, 3), 64, PAPER, np.zeros(3)))
    counts = np.bincount(values.ravel(), minlength=256)
    assert values.dtype == np.uint8 and stats.chisquare(counts).pvalue > 1e-3


def _erased_batches(split, start_step, process_index, process_count, per_process_batch, steps):
    return in_memory_batches(
        split,
        start_step,
        process_index,
        process_count,
        per_process_batch,
        steps,
        augmentation=pad_crop.Augmentation(random_flip=True, random_erasing=PAPER),  # no crop: no zeros padded in
    )


def test_the_pipeline_erases_the_same_pixels_on_any_process_count_and_after_resuming():
    split = {"image": np.full((30, 10, 10, 1), 255, np.uint8), "label": np.arange(30, dtype=np.int32)}
    one_process = _erased_batches(split, 0, 0, 1, per_process_batch=12, steps=4)
    erased_per_image = [(batch["image"] != 255).reshape(12, -1).any(axis=1) for batch in one_process]
    assert 0.25 < np.mean(erased_per_image) < 0.75  # about half the images lost a rectangle
    for step in (0, 3):
        slices = [_erased_batches(split, step, p, 3, per_process_batch=4, steps=1)[0] for p in range(3)]
        np.testing.assert_array_equal(np.concatenate([s["image"] for s in slices]), one_process[step]["image"])
    resumed = _erased_batches(split, 2, 0, 1, per_process_batch=12, steps=2)
    for got, expected in zip(resumed, one_process[2:], strict=True):
        np.testing.assert_array_equal(got["image"], expected["image"])


@pytest.mark.parametrize("area_range, min_aspect_ratio", [((0.02, 0.4), 0.3), ((0.3, 0.9), 0.1)])
def test_the_fit_probability_is_that_of_one_draw_of_algorithm_1(area_range, min_aspect_ratio):
    rng, draws, fits = np.random.default_rng(2), 20_000, 0
    for _ in range(draws):  # one pass of the paper's loop body
        area = rng.uniform(*area_range) * 28 * 28
        ratio = rng.uniform(min_aspect_ratio, 1 / min_aspect_ratio)
        h, w = max(1, round(math.sqrt(area * ratio))), max(1, round(math.sqrt(area / ratio)))
        fits += rng.integers(0, 28) + w <= 28 and rng.integers(0, 28) + h <= 28
    expected = erasing.fit_probability(28, 28, erasing.RandomErasing(1.0, area_range, min_aspect_ratio))
    assert abs(fits / draws - expected) < 4 * math.sqrt(expected * (1 - expected) / draws)


def test_settings_that_almost_never_fit_are_refused():
    with pytest.raises(ValueError, match="almost never fit a 4x4 image"):
        erasing.attempts_needed(4, 4, erasing.RandomErasing(1.0, (0.9, 0.99), 0.05))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"probability": 1.5}, r"random_erasing.probability must be in \[0, 1\], got 1.5"),
        ({"area_range": (0.4, 0.02)}, r"area_range must be \(low, high\) with low <= high, got \(0.4, 0.02\)"),
        ({"area_range": (0.0, 0.4)}, r"area_range must be in \(0, 1\) \(each value\), got \(0.0, 0.4\)"),
        ({"min_aspect_ratio": 3.0}, r"min_aspect_ratio must be in \(0, 1\], got 3.0 \(.*r1"),
        ({"fill": "noise"}, r"random_erasing.fill must be one of 'random', 'mean', 'zero', 'constant', got 'noise'"),
    ],
)
def test_bad_random_erasing_settings_are_refused_with_the_valid_range(fields, message):
    config = default.get_config()
    config.dataset = "fashion_mnist"
    config.random_erasing.update(fields)
    with pytest.raises(ConfigError, match=message):
        config_schema.validate(config)


def test_random_erasing_is_refused_where_the_pipeline_cannot_apply_it():
    config = default.get_config()  # the synthetic dataset
    config.random_erasing.probability = 0.5
    words = "not to dataset 'synthetic', which the synthetic pipeline feeds; set --config.random_erasing.probability=0"
    with pytest.raises(ConfigError, match=words):
        config_schema.validate(config)
