"""ImageNet (ILSVRC 2012): offline preparation from the original tars, and its train and eval crops.

Preparation hands TFDS's own ``imagenet2012`` builder the two tars from ``--manual_dir`` after an md5
check against the values image-net.org publishes. The crops read only the JPEG window they need
(``decode_and_crop_jpeg``), then resize it to ``image_size`` with antialiasing, as PIL does for
torchvision, so torchvision-trained weights see the inputs they were trained on.
"""

import dataclasses
import math
from pathlib import Path

from resnet_jax.data import tfds_source
from resnet_jax.data.checksum import Archive, verify_archive

ARCHIVES = (
    Archive("ILSVRC2012_img_train.tar", "1d675b47d978889d74fa0da5fadfb00e", "md5"),
    Archive("ILSVRC2012_img_val.tar", "29b22e2961454d5413ddabcf34fc5622", "md5"),
)


def prepare(data_dir: str, manual_dir: str, skip_checksum: bool = False) -> str:
    """Build TFDS ``imagenet2012`` in ``data_dir`` from the two tars in ``manual_dir``; no network."""
    import tensorflow_datasets as tfds

    for archive in ARCHIVES:
        verify_archive(Path(manual_dir).expanduser() / archive.filename, archive, skip_checksum)
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return str(builder.data_dir)


@dataclasses.dataclass(frozen=True)
class Crops:
    """How train and eval images become ``image_size`` squares.

    Attributes:
      image_size: side of the crops fed to the model (224).
      train_crop: 'random_resized' (Inception-style: 8%-100% of the area, aspect 3/4-4/3, as torchvision)
        or 'scale_jitter' (He et al. 2016: shorter side resized to a random value in ``scale_range``,
        then a random ``image_size`` crop).
      scale_range: the shorter-side range of 'scale_jitter', inclusive.
      eval_resize: eval images are resized to this shorter side, then centre-cropped to ``image_size``.
      random_flip: whether train crops are flipped left-right at random (half of them).
    """

    image_size: int = 224
    train_crop: str = "random_resized"
    scale_range: tuple[int, int] = (256, 480)
    eval_resize: int = 256
    random_flip: bool = True


def _crop_resize(jpeg, window, image_size: int):
    """Decode only ``window`` = (top, left, height, width) of the JPEG and resize it to a uint8 square
    (rounded, as PIL's resize gives torchvision); the step normalises it on the device."""
    tf = tfds_source.tensorflow()
    image = tf.image.decode_and_crop_jpeg(jpeg, tf.stack(window), channels=3)
    image = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


RANDOM_RESIZED_SCALE = (0.08, 1.0)  # torchvision's RandomResizedCrop defaults (Szegedy et al. 2015)
RANDOM_RESIZED_RATIO = (3 / 4, 4 / 3)
RANDOM_RESIZED_ATTEMPTS = 10


def random_resized_window(shape, key):
    """torchvision's RandomResizedCrop window: up to 10 draws of an area fraction uniform in [0.08, 1] and
    an aspect ratio log-uniform in [3/4, 4/3], the first that fits placed uniformly at random; if none
    fits, the centre of the image at the nearest allowed aspect. Returns (top, left, height, width)."""
    tf = tfds_source.tensorflow()
    area_key, ratio_key, top_key, left_key = tf.unstack(tf.random.experimental.stateless_split(key, 4))
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    low, high = RANDOM_RESIZED_RATIO
    areas = height * width * tf.random.stateless_uniform([RANDOM_RESIZED_ATTEMPTS], area_key, *RANDOM_RESIZED_SCALE)
    log_ratios = tf.random.stateless_uniform([RANDOM_RESIZED_ATTEMPTS], ratio_key, math.log(low), math.log(high))
    widths = tf.round(tf.sqrt(areas * tf.exp(log_ratios)))
    heights = tf.round(tf.sqrt(areas / tf.exp(log_ratios)))
    fits = (widths > 0) & (widths <= width) & (heights > 0) & (heights <= height)
    first = tf.argmax(tf.cast(fits, tf.int32))  # the first draw that fits (0 when none does)
    found = tf.reduce_any(fits)
    ratio = width / height
    crop_height = tf.where(found, heights[first], tf.where(ratio < low, tf.round(width / low), height))
    crop_width = tf.where(found, widths[first], tf.where(ratio > high, tf.round(height * high), width))
    top_draw = tf.random.stateless_uniform([], top_key)
    left_draw = tf.random.stateless_uniform([], left_key)
    top = tf.where(found, tf.floor(top_draw * (height - crop_height + 1)), tf.floor((height - crop_height) / 2))
    left = tf.where(found, tf.floor(left_draw * (width - crop_width + 1)), tf.floor((width - crop_width) / 2))
    return tuple(tf.cast(value, tf.int32) for value in (top, left, crop_height, crop_width))


def scale_jitter_window(shape, key, crops: Crops):
    """The window that resizing the shorter side to a random S in ``scale_range`` then cropping selects."""
    tf = tfds_source.tensorflow()
    keys = tf.random.experimental.stateless_split(key, 3)
    low, high = crops.scale_range
    scale = tf.random.stateless_uniform([], keys[0], low, high + 1, dtype=tf.int32)
    shorter = tf.minimum(shape[0], shape[1])
    side = tf.cast(
        tf.math.round(crops.image_size * tf.cast(shorter, tf.float32) / tf.cast(scale, tf.float32)), tf.int32
    )
    side = tf.clip_by_value(side, 1, shorter)
    top = tf.random.stateless_uniform([], keys[1], 0, shape[0] - side + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], keys[2], 0, shape[1] - side + 1, dtype=tf.int32)
    return top, left, side, side


def train_image(jpeg, key, crops: Crops):
    """A random crop of the JPEG (as ``crops.train_crop`` says), resized and randomly flipped if asked (uint8)."""
    tf = tfds_source.tensorflow()
    crop_key, flip_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    shape = tf.image.extract_jpeg_shape(jpeg)
    if crops.train_crop == "scale_jitter":
        window = scale_jitter_window(shape, crop_key, crops)
    else:
        window = random_resized_window(shape, crop_key)
    image = _crop_resize(jpeg, window, crops.image_size)
    return tf.image.stateless_random_flip_left_right(image, flip_key) if crops.random_flip else image


def eval_image(jpeg, crops: Crops):
    """Resize the shorter side to ``eval_resize`` and centre-crop ``image_size``, reading only that window."""
    tf = tfds_source.tensorflow()
    shape = tf.image.extract_jpeg_shape(jpeg)
    shorter = tf.cast(tf.minimum(shape[0], shape[1]), tf.float32)
    side = tf.cast(tf.math.round(shorter * crops.image_size / crops.eval_resize), tf.int32)
    window = ((shape[0] - side + 1) // 2, (shape[1] - side + 1) // 2, side, side)
    return _crop_resize(jpeg, window, crops.image_size)
