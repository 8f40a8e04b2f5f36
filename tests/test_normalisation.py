"""uint8 images go to the devices and are normalised inside the jitted steps, as the host used to do it."""

import jax
import numpy as np
import optax
import pytest
from conftest import datasets_for, random_variables

from configs import default
from resnet_jax import data
from resnet_jax.data.augment.normalisation import Normalisation
from resnet_jax.data.pipelines import synthetic
from resnet_jax.models import create_model
from resnet_jax.train import sharding
from resnet_jax.train.state import create_train_state
from resnet_jax.train.step import make_eval_step, make_train_step

# torchvision's documented ImageNet statistics (transforms.Normalize in its models' weights transforms).
TORCHVISION_MEAN, TORCHVISION_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_imagenet_statistics_are_torchvisions():
    imagenet = Normalisation.imagenet()
    np.testing.assert_array_equal(imagenet.mean, TORCHVISION_MEAN)
    np.testing.assert_array_equal(imagenet.std, TORCHVISION_STD)


@pytest.mark.parametrize("mode", ["channel", "pixel_mean"])
def test_on_device_normalisation_is_x_over_255_minus_mean_over_std(mode):
    images = np.random.default_rng(0).integers(0, 256, (20, 4, 4, 3), dtype=np.uint8)
    normalisation = Normalisation.from_images(images, mode)
    got = jax.jit(normalisation)(images)
    assert got.dtype == np.float32
    x = images.astype(np.float64) / 255
    mean = x.mean(axis=0) if mode == "pixel_mean" else x.mean(axis=(0, 1, 2))
    std = 1.0 if mode == "pixel_mean" else x.std(axis=(0, 1, 2))
    np.testing.assert_allclose(got, (x - mean) / std, atol=2e-6)


def test_synthetic_levels_map_back_to_colour_plus_noise_within_half_a_level():
    rng = np.random.default_rng([0, 0, 3])
    labels = rng.integers(0, 10, size=32)
    values = synthetic.class_colours(10, 3)[labels][:, None, None, :] + rng.standard_normal(
        (32, 6, 6, 3), dtype=np.float32
    )
    batch = synthetic.train_batch(0, 3, 32, 10, (6, 6, 3), 1.0)
    np.testing.assert_array_equal(batch["label"], labels)
    restored = np.asarray(synthetic.normalisation(3)(batch["image"]))
    inside = np.abs(values) < 5  # the levels hold +-5.3 units; beyond that they saturate
    assert inside.mean() > 0.99
    np.testing.assert_array_less(np.abs(restored - values)[inside], 0.5 / synthetic.PIXEL_UNIT + 1e-5)


def test_images_reach_the_devices_as_the_stored_uint8_levels():
    """A quarter of float32's bytes cross to the device: the pipeline and the transfer keep uint8."""
    config = default.get_config()
    config.update(dict(image_size=8))
    datasets = datasets_for(config, 8)
    train = next(datasets.train_batches(0))
    evaluated = next(iter(datasets.eval_splits[data.TEST].batches()))
    stored = synthetic.train_batch(config.seed, 0, 8, 10, (8, 8, 3), config.synthetic.noise)["image"]
    np.testing.assert_array_equal(train["image"], stored)  # the levels as generated, not rescaled
    mesh = sharding.make_mesh()
    for batch in (train, evaluated):
        on_devices = next(sharding.prefetch_to_device(iter([batch]), mesh))["image"]
        assert batch["image"].dtype == on_devices.dtype == np.uint8
        np.testing.assert_array_equal(np.asarray(on_devices), batch["image"])


def test_a_step_on_uint8_images_equals_a_step_on_images_normalised_on_the_host():
    model = create_model("cifar_resnet20", num_classes=5, stage_sizes=(1, 1), widths=(4, 8), stem_width=4)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, 8).astype(np.int32)
    normalisation = Normalisation.from_images(images, "channel")
    on_host = ((images / 255 - normalisation.mean) / normalisation.std).astype(np.float32)  # float64 by hand
    tx = optax.sgd(0.1, momentum=0.9)
    variables = random_variables(model, 8)

    def train(batch_images, **normalise):
        state = create_train_state(variables, tx, jax.random.PRNGKey(1))
        state, outputs = jax.jit(make_train_step(model, tx, **normalise))(
            state, {"image": batch_images, "label": labels}
        )
        return state, outputs

    device_state, device_outputs = train(images, normalise=normalisation)
    host_state, host_outputs = train(on_host)
    for got, expected in zip(
        jax.tree_util.tree_leaves(device_state), jax.tree_util.tree_leaves(host_state), strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(device_outputs["loss"], host_outputs["loss"], rtol=1e-5)
    batch = {"label": labels, "mask": np.ones(8, np.float32)}
    device_eval = make_eval_step(model, normalisation)(variables, {**batch, "image": images})
    host_eval = make_eval_step(model)(variables, {**batch, "image": on_host})
    np.testing.assert_allclose(device_eval["loss"], host_eval["loss"], rtol=1e-5)
