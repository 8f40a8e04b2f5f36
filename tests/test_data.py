"""Eval splitting and padding, and the synthetic dataset's determinism (numpy only)."""

import json

import numpy as np
import pytest

from resnet_jax.data.pipelines import batching, synthetic


@pytest.mark.parametrize("num_examples", [0, 1, 37, 50_000])
@pytest.mark.parametrize("process_count", [1, 2, 3, 8])
def test_processes_split_the_eval_set_into_disjoint_covering_blocks(num_examples, process_count):
    seen = [i for p in range(process_count) for i in batching.process_range(num_examples, p, process_count)]
    assert seen == list(range(num_examples))


@pytest.mark.parametrize("num_examples, batch_size, process_count", [(37, 8, 1), (37, 8, 3), (50_000, 256, 8)])
def test_padded_batches_count_every_example_once(num_examples, batch_size, process_count):
    counts, values = [], []
    num_batches = batching.num_eval_batches(num_examples, batch_size, process_count)
    for process in range(process_count):
        block = batching.process_range(num_examples, process, process_count)
        local = {"label": np.arange(block.start, block.stop)}
        batches = list(batching.padded_batches(local, batch_size, num_batches))
        assert len(batches) == num_batches  # every process runs the same number of steps
        counts.append(sum(b["mask"].sum() for b in batches))
        values.extend(v for b in batches for v, m in zip(b["label"], b["mask"], strict=True) if m)
    assert sum(counts) == num_examples
    assert sorted(values) == list(range(num_examples))


def test_padded_batches_refuse_too_few_batches():
    with pytest.raises(ValueError, match="do not fit"):
        list(batching.padded_batches({"x": np.zeros(10)}, 4, 2))


def test_synthetic_train_batches_depend_only_on_seed_and_step():
    first = synthetic.train_batch(0, 5, 16, 10, (8, 8, 3), 1.0)
    again = synthetic.train_batch(0, 5, 16, 10, (8, 8, 3), 1.0)
    other = synthetic.train_batch(0, 6, 16, 10, (8, 8, 3), 1.0)
    other_seed = synthetic.train_batch(1, 5, 16, 10, (8, 8, 3), 1.0)
    np.testing.assert_array_equal(first["image"], again["image"])
    assert not np.array_equal(first["image"], other["image"])
    assert not np.array_equal(first["image"], other_seed["image"])


def test_synthetic_rule_is_the_class_colour():
    batch = synthetic.train_batch(0, 0, 512, 10, (16, 16, 3), 1.0)
    colours = synthetic.class_colours(10, 3)
    assert batch["image"].dtype == np.uint8
    mean_colour = np.asarray(synthetic.normalisation(3)(batch["image"])).mean(axis=(1, 2))
    nearest = np.argmin(((mean_colour[:, None, :] - colours[None]) ** 2).sum(-1), axis=1)
    assert (nearest == batch["label"]).mean() > 0.95


def test_random_streams_keep_the_ids_every_recorded_run_used():
    from resnet_jax.data.streams import Stream, SyntheticStream

    # Changing an id changes the data of every run that uses the stream: these are the historic values.
    # 10 and 11 were the streamed pipeline's per-process file order and shuffle until it fed each row of the
    # batch from its own stream (issue 29); they are retired, never to mean anything else.
    assert {stream.name: int(stream) for stream in Stream} == {
        "EPOCH_ORDER": 0,
        "CROP_FLIP": 1,
        "ERASING": 2,
        "TRAIN_CROP": 12,
        "CHUNK_ORDER": 13,
        "ROW_SHUFFLE": 14,
        "NAMED_EXAMPLES": 15,  # issue 41: the registered example augmentations
    }
    assert {stream.name: int(stream) for stream in SyntheticStream} == {"TRAIN": 0, "EVAL": 1}


def test_a_dataset_a_model_an_augmentation_and_an_option_registered_from_outside_the_package_train_by_their_names(
    tmp_path, toy_extensions
):
    """tests/toy_dataset.py registers ``toy_stripes``, tests/toy_model.py the ``toy_convnet`` family and a small
    ResNet, tests/toy_augmentation.py an example and a batch augmentation and tests/toy_option.py an
    architecture option, as a user's modules would: the config names them, the run prepares the dataset from its
    builder, writes its numpy copy and trains the model on it, each example and each batch augmented in the train
    step; a second run trains the ResNet with the option in every unit. Nothing in the package changes."""
    pytest.importorskip("tensorflow_datasets", reason="the toy dataset is a TFDS builder: the tfds extra")
    import toy_dataset

    toy_model, toy_augmentation, toy_option = toy_extensions

    from configs import digits
    from resnet_jax.data import spec
    from resnet_jax.models import registry
    from resnet_jax.train import loop
    from resnet_jax.train.checkpoint import load_variables

    with pytest.raises(ValueError, match="'toy_stripes' is taken"):
        spec.register_dataset(spec.NAMED_DATASETS[toy_dataset.NAME])
    with pytest.raises(ValueError, match=r"\['toy_convnet', 'toy_resnet'\] are registered already"):
        registry.register_models(toy_model.SPECS)
    config = digits.get_config()
    config.update(dict(dataset="toy_stripes", data_dir=str(tmp_path / "tfds"), num_classes=0, batch_size=16))
    config.update(dict(model="toy_convnet", batch_augmentations=(toy_augmentation.NAME,)))
    config.example_augmentations = (toy_augmentation.EXAMPLE_NAME,)
    config.update(dict(num_train_steps=12, log_every_steps=6, eval_every_steps=12, checkpoint_every_steps=12))
    config.update(dict(warmup_epochs=0.0, compilation_cache_dir="none"))
    results = loop.train_and_evaluate(config, tmp_path / "run")
    assert results["step"] == 12 and results["num_eval_examples"] == toy_dataset.SPLITS["test"]
    assert (tmp_path / "tfds" / "resnet_jax_arrays" / "toy_stripes.npz").exists()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"] == "toy_convnet"
    assert (16, 8, 8, 1) in toy_augmentation.TRACES  # inside the compiled train step, on the global batch
    assert (16, 8, 8, 1) in toy_augmentation.EXAMPLE_TRACES  # and the uint8 batch, as the crops are made
    assert results["eval/top1"] > 1 / 3  # the stripes' direction is learnable in 12 steps

    config.update({"model": "toy_resnet", "batch_augmentations": (), "example_augmentations": ()})
    config[toy_option.NAME] = 0.5
    results = loop.train_and_evaluate(config, tmp_path / "option_run")
    assert results["step"] == 12 and np.isfinite(results["eval/loss"])
    assert json.loads((tmp_path / "option_run" / "config.json").read_text())[toy_option.NAME] == 0.5
    params = load_variables(tmp_path / "option_run")["params"]
    gains = [np.asarray(params[unit][toy_option.NAME]) for unit in ("layer1_0", "layer2_0")]
    assert [gain.shape for gain in gains] == [(8,), (16,)]
    assert all(not np.allclose(gain, 0.5) for gain in gains)  # trained from LayerScale's start
