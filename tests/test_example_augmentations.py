"""A registered augmentation of single examples (tests/toy_augmentation.py: invert half the images) runs in both
pipelines after their own augmentations, draws as a function of (seed, step), and is refused where it cannot run."""

import numpy as np
import pytest

from resnet_jax.data.augment.pad_crop import Augmentation
from resnet_jax.data.pipelines import in_memory
from resnet_jax.errors import ConfigError

SPLIT = {
    "image": np.random.default_rng(0).integers(0, 256, (40, 6, 6, 1), dtype=np.uint8),
    "label": np.arange(40, dtype=np.int32) % 4,
}


def _batch(step, augmentation, seed=3):
    batch = in_memory.train_batch(SPLIT, step, seed=seed, global_batch=16, augmentation=augmentation)
    return np.asarray(batch["image"])


def test_the_in_memory_pipeline_applies_it_after_the_crops_and_flips_to_each_image_on_its_own(toy_extensions):
    _, toy_augmentation, _ = toy_extensions
    own = Augmentation(crop_padding=2, random_flip=True)
    named = Augmentation(crop_padding=2, random_flip=True, named=(toy_augmentation.EXAMPLE_NAME,))
    for step in (0, 7):
        cropped, augmented = _batch(step, own), _batch(step, named)
        kept = np.all(augmented == cropped, axis=(1, 2, 3))
        inverted = np.all(augmented == 255 - cropped, axis=(1, 2, 3))
        assert np.all(kept | inverted) and kept.any() and inverted.any()  # per image, about half each
        np.testing.assert_array_equal(_batch(step, named), augmented)  # a function of (seed, step)
    draws = [np.all(_batch(step, named) == 255 - _batch(step, own), axis=(1, 2, 3)) for step in range(4)]
    assert len({tuple(d) for d in draws}) > 1  # each step draws anew


def test_the_streamed_pipeline_applies_it_to_each_cropped_image_seeded_by_the_examples_key(toy_extensions):
    tf = pytest.importorskip("tensorflow", reason="the streamed pipeline is tf.data: the tfds extra")
    _, toy_augmentation, _ = toy_extensions
    from resnet_jax.data.augment.examples import streamed_train_image
    from resnet_jax.data.sources.tfds_source import stateless_key

    image = tf.constant(SPLIT["image"][0])
    train_image = streamed_train_image(lambda encoded, key: encoded, (toy_augmentation.EXAMPLE_NAME,))
    outputs = [train_image(image, stateless_key(5, 12, index)).numpy() for index in range(24)]
    inverted = [np.array_equal(out, 255 - SPLIT["image"][0]) for out in outputs]
    assert all(inv or np.array_equal(out, SPLIT["image"][0]) for inv, out in zip(inverted, outputs, strict=True))
    assert any(inverted) and not all(inverted)
    np.testing.assert_array_equal(train_image(image, stateless_key(5, 12, 3)).numpy(), outputs[3])


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"example_augmentations": ("toy_invert_hal",)}, "not registered .*did you mean 'toy_invert_half'"),
        ({"example_augmentations": ("toy_in_memory_only",), "dataset": "tfds:stripes", "pipeline": "streamed"},
         "'toy_in_memory_only' has no function for the streamed pipeline"),
        ({"example_augmentations": ("toy_invert_half",), "dataset": "synthetic"}, "the synthetic dataset has none"),
    ],
)  # fmt: skip
def test_a_name_not_registered_or_without_a_function_for_the_pipeline_is_refused(toy_extensions, changes, message):
    _, toy_augmentation, _ = toy_extensions
    from configs import digits
    from resnet_jax import config_schema
    from resnet_jax.data.augment.examples import ExampleAugmentation, register_example_augmentation

    register_example_augmentation(ExampleAugmentation("toy_in_memory_only", toy_augmentation.invert_half))
    with pytest.raises(ValueError, match="'toy_in_memory_only' is registered already"):
        register_example_augmentation(ExampleAugmentation("toy_in_memory_only", toy_augmentation.invert_half))
    config = digits.get_config()
    config.update(changes)
    with pytest.raises(ConfigError, match=message):
        config_schema.validate(config)
