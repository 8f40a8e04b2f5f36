"""ImageNet prepared offline from a miniature ILSVRC2012 tar set with real JPEGs; crops and the streamed pipeline."""

import functools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from archives import jpeg_bytes, write_imagenet_archives
from conftest import assert_whole_images
from PIL import Image

from configs import imagenet as imagenet_config
from resnet_jax.data import prepare
from resnet_jax.data.augment import crops as streamed_crops
from resnet_jax.data.fields import TRAIN_CROPS
from resnet_jax.data.pipelines import streaming
from resnet_jax.data.sources import tfds_source
from resnet_jax.train import loop

pytestmark = pytest.mark.xdist_group("imagenet")  # one worker prepares the miniature dataset once
SYNSETS = ["n01440764", "n01443537", "n01484850", "n01491361"]
SMALL = streamed_crops.Crops(image_size=24, train_crop="random_resized", scale_range=(28, 48), eval_resize=28)


def _tfds_file(name: str) -> list[str]:
    return tfds.core.tfds_path(f"datasets/imagenet2012/{name}").read_text().split()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    directory = tmp_path_factory.mktemp("imagenet")
    written = write_imagenet_archives(directory, SYNSETS, per_class=5, num_val=11)
    prepare.main(
        ["imagenet2012", "--data_dir", str(directory / "tfds"), "--manual_dir", str(directory), "--skip_checksum"]
    )
    return directory, written, tfds_source.prepared_builder("imagenet2012", str(directory / "tfds"))


def test_every_record_arrives_with_its_official_label_and_exact_pixels(prepared):
    _, written, builder = prepared
    class_index = {synset: index for index, synset in enumerate(_tfds_file("labels.txt"))}
    validation_synsets = _tfds_file("validation_labels.txt")  # line i: the synset of ILSVRC2012_val_{i+1:08d}
    assert {name: info.num_examples for name, info in builder.info.splits.items()} == {"train": 20, "validation": 11}
    for split, files in written.items():
        files = dict(files)
        for record in tfds.as_numpy(builder.as_dataset(split=split)):
            name = record["file_name"].decode()
            synset, jpeg = files.pop(name)
            if split == "validation":
                synset = validation_synsets[int(name[-13:-5]) - 1]
            assert record["label"] == class_index[synset], name
            np.testing.assert_array_equal(record["image"], tf.io.decode_jpeg(jpeg).numpy())
        assert not files  # every written image arrived once


def test_the_official_md5_is_checked_and_both_tars_are_needed(prepared, tmp_path):
    directory, _, _ = prepared
    with pytest.raises(ValueError, match="md5 .* --skip_checksum"):
        prepare.prepare("imagenet2012", str(tmp_path / "tfds"), str(directory))
    with pytest.raises(FileNotFoundError, match="ILSVRC2012_img_train.tar not found"):
        prepare.prepare("imagenet2012", str(tmp_path / "tfds"), str(tmp_path), skip_checksum=True)


def test_random_resized_windows_keep_8_to_100_percent_of_the_area_at_aspect_3_4_to_4_3():
    shape = tf.constant([300, 400, 3])
    for seed in range(50):
        top, left, height, width = (int(v) for v in streamed_crops.random_resized_window(shape, tf.constant([seed, 1])))
        assert 0 <= top and top + height <= 300 and 0 <= left and left + width <= 400
        if (height, width) != (300, 400):  # the fallback after 10 failed attempts is the whole image
            assert 0.08 <= height * width / 120_000 <= 1.0
            assert 3 / 4 - 0.02 <= width / height <= 4 / 3 + 0.02


def test_scale_jitter_windows_match_resizing_the_shorter_side_into_the_range():
    crops = streamed_crops.Crops(image_size=224, train_crop="scale_jitter", scale_range=(256, 480))
    sides = set()
    for seed in range(50):
        top, left, height, width = (
            int(v)
            for v in streamed_crops.scale_jitter_window(tf.constant([300, 500, 3]), tf.constant([seed, 2]), crops)
        )
        assert height == width and round(224 * 300 / 480) <= height <= round(224 * 300 / 256)
        assert 0 <= top <= 300 - height and 0 <= left <= 500 - width
        sides.add(height)
    assert len(sides) > 10


@pytest.mark.parametrize("train_crop", TRAIN_CROPS)
def test_train_crops_have_the_size_and_range_and_repeat_under_a_key(train_crop):
    crops = streamed_crops.Crops(image_size=24, train_crop=train_crop, scale_range=(28, 48))
    jpeg = tf.constant(jpeg_bytes(np.random.default_rng(0), 60, 90))
    first, again, other = (
        streamed_crops.train_image(jpeg, tf.constant(key), crops).numpy() for key in ([0, 5], [0, 5], [0, 6])
    )
    assert first.shape == (24, 24, 3) and first.dtype == np.uint8  # normalised later, on the device
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # The pixels are PIL's crop-and-resize of the drawn window (its distribution is tested above), maybe flipped.
    crop_key = tf.unstack(tf.random.experimental.stateless_split(tf.constant([0, 5]), 2))[0]
    shape = tf.image.extract_jpeg_shape(jpeg)
    if train_crop == "scale_jitter":
        window = streamed_crops.scale_jitter_window(shape, crop_key, crops)
    else:
        window = streamed_crops.random_resized_window(shape, crop_key)
    top, left, height, width = (int(value) for value in window)
    original = Image.fromarray(tf.io.decode_jpeg(jpeg).numpy())
    expected = np.asarray(original.crop((left, top, left + width, top + height)).resize((24, 24), Image.BILINEAR))
    differences = [np.abs(first.astype(int) - candidate) for candidate in (expected, expected[:, ::-1])]
    difference = min(differences, key=np.mean)
    assert difference.max() <= 6 and difference.mean() < 1.2, (window, difference.max(), difference.mean())


def test_eval_crop_is_resize_256_centre_224_as_pil_does_it():
    jpeg = jpeg_bytes(np.random.default_rng(1), 64, 96)
    got = streamed_crops.eval_image(tf.constant(jpeg), streamed_crops.Crops(image_size=28, eval_resize=32)).numpy()
    # Reference, by hand: shorter side 64 -> 32 scales by 1/2, so the centre 28 crop is the centre 56 x 56
    # window of the original: rows 4..60, columns 20..76. PIL resizes that window to 28 x 28.
    original = Image.fromarray(tf.io.decode_jpeg(jpeg).numpy())
    expected = np.asarray(original.crop((20, 4, 76, 60)).resize((28, 28), Image.BILINEAR))
    assert got.dtype == expected.dtype == np.uint8
    difference = np.abs(got.astype(int) - expected)
    assert difference.max() <= 6 and difference.mean() < 1.2  # resampling differences only, in uint8 levels


def _stream(builder, start_step, process_index, process_count, steps, batch=2, train_image=None, shuffle=8):
    """``steps`` batches of process ``process_index`` of ``process_count``; ``batch`` is per process."""
    dataset = streaming.train_dataset(
        builder,
        "train",
        seed=0,
        start_step=start_step,
        per_process_batch=batch,
        process_index=process_index,
        process_count=process_count,
        shuffle_buffer_size=shuffle,
        train_image=train_image or functools.partial(streamed_crops.train_image, crops=SMALL),
    )
    iterator = dataset.as_numpy_iterator()
    return [next(iterator) for _ in range(steps)]


def _global_batches(builder, start_step, process_count, steps, global_batch, train_image=None, shuffle=8):
    """The global batches as the processes' slices put together in process order, as the devices hold them."""
    slices = [
        _stream(builder, start_step, process, process_count, steps, global_batch // process_count, train_image, shuffle)
        for process in range(process_count)
    ]
    return [{key: np.concatenate([s[step][key] for s in slices]) for key in slices[0][step]} for step in range(steps)]


def _fingerprint(jpeg, key):
    del key
    return tf.strings.to_hash_bucket_fast(jpeg, 2**62)


@pytest.mark.parametrize("global_batch", [4, 6, 20])
def test_in_each_epoch_the_rows_of_the_batch_read_every_example_once(prepared, global_batch):
    """Row r reads its share of the 20 records each epoch: sizes within one, disjoint, together the split."""
    _, _, builder = prepared
    sizes = [streaming.row_size(row, 20, global_batch) for row in range(global_batch)]
    assert sum(sizes) == 20 and max(sizes) - min(sizes) <= 1
    batches = _global_batches(builder, 0, 2, 2 * max(sizes), global_batch, _fingerprint, shuffle=100)
    columns = np.stack([b["image"] for b in batches], axis=1)  # row -> the row's examples, step by step
    epochs = [
        [tuple(column[epoch * size : (epoch + 1) * size]) for column, size in zip(columns, sizes, strict=True)]
        for epoch in (0, 1)
    ]
    for rows in epochs:
        read = [example for row in rows for example in row]
        assert len(read) == len(set(read)) == 20  # every example once, read by one row
    if global_batch < 20:  # rows of several examples, each shuffled anew each epoch
        assert epochs[0] != epochs[1]


def test_a_stream_resumed_on_another_process_count_gives_the_uninterrupted_batches(prepared):
    """2 processes from step 0, against resumes at step 3 on 1, 2, 3 and 4 processes: the same global
    batches of steps 3..9, example for example (the crops too). Rows of 1 or 2 examples cross many epochs."""
    _, _, builder = prepared
    straight = _global_batches(builder, 0, 2, 10, global_batch=12)
    assert len({b["image"].tobytes() for b in straight}) == 10  # a stream that moves, not one batch repeated
    for process_count in (1, 2, 3, 4):
        resumed = _global_batches(builder, 3, process_count, 7, global_batch=12)
        for step, (got, expected) in enumerate(zip(resumed, straight[3:], strict=True), start=3):
            for key in ("label", "image"):
                np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{process_count} processes, {step=}")


def test_a_global_batch_larger_than_the_split_is_refused_with_what_to_do(prepared):
    _, _, builder = prepared
    with pytest.raises(ValueError, match=r"20 training examples, fewer than batch_size=24.*batch_size=20 or less"):
        _stream(builder, 0, 0, 2, steps=1, batch=12)


@pytest.mark.parametrize("process_count, batch", [(1, 4), (2, 4), (3, 2)])
def test_streamed_eval_counts_every_example_once_with_padding(prepared, process_count, batch):
    _, _, builder = prepared
    labels, counts = [], set()
    for process in range(process_count):
        batches = list(
            streaming.eval_dataset(
                builder,
                "validation",
                per_process_batch=batch,
                process_index=process,
                process_count=process_count,
                eval_image=functools.partial(streamed_crops.eval_image, crops=SMALL),
            ).as_numpy_iterator()
        )
        counts.add(len(batches))  # every process runs the same number of eval steps
        labels.extend(label for b in batches for label, mask in zip(b["label"], b["mask"], strict=True) if mask)
        assert all(b["image"].shape == (batch, 24, 24, 3) for b in batches)
    expected = [record["label"] for record in tfds.as_numpy(builder.as_dataset(split="validation"))]
    assert len(counts) == 1 and sorted(labels) == sorted(expected)


def test_training_on_the_prepared_miniature_imagenet(prepared, tmp_path):
    directory, _, _ = prepared
    config = imagenet_config.get_config("resnet18")
    config.update(dict(model="cifar_resnet20", data_dir=str(directory / "tfds"), image_size=24, eval_resize=28))
    config.update(dict(batch_size=8, bn_group_size=0, num_epochs=0.0, num_train_steps=2, validation_examples=4))
    config.update(dict(schedule="cosine", lr_boundaries_epochs=()))
    config.update(dict(eval_every_steps=2, checkpoint_every_steps=2, shuffle_buffer_size=8))
    results = loop.train_and_evaluate(config, tmp_path / "run")
    assert results["step"] == 2 and results["num_eval_examples"] == 11 and results["num_val_examples"] == 4
    assert_whole_images(results["eval/top1"], 11)
    assert_whole_images(results["val/top1"], 4)
    assert np.isfinite(results["eval/loss"])
