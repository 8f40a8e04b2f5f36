"""The streamed pipeline's crops, in tf.data: how photos of any size become ``image_size`` squares.

Training takes torchvision's RandomResizedCrop window (Inception-style) or He et al.'s scale jitter;
evaluation resizes the shorter side to ``eval_resize`` and takes the centre ``image_size`` crop. JPEGs
are decoded only inside the chosen window (``decode_and_crop_jpeg``), other encodings (PNG, BMP, GIF)
whole and then cut. The window is resized to ``image_size`` with antialiasing, as PIL does for
torchvision, so torchvision-trained weights see the inputs they were trained on. Images come out uint8
with the dataset's channels; the steps normalise them on the device.
"""

import dataclasses
import math

from resnet_jax.data.sources import tfds_source

RANDOM_RESIZED_SCALE = (0.08, 1.0)  # torchvision's RandomResizedCrop defaults (Szegedy et al. 2015)
RANDOM_RESIZED_RATIO = (3 / 4, 4 / 3)
RANDOM_RESIZED_ATTEMPTS = 10
EVAL_CROP_FRACTION = 224 / 256  # the centre crop's share of the resized shorter side (torchvision's ImageNet eval)


@dataclasses.dataclass(frozen=True)
class Crops:
    """How train and eval images become ``image_size`` squares.

    Attributes:
      image_size: side of the crops fed to the model (224).
      train_crop: 'random_resized' (Inception-style: 8%-100% of the area, aspect 3/4-4/3, as torchvision)
        or 'scale_jitter' (He et al. 2016: shorter side resized to a random value in ``scale_range``,
        then a random ``image_size`` crop).
      scale_range: the shorter-side range of 'scale_jitter', inclusive.
      eval_resize: eval images are resized to this shorter side, then centre-cropped to ``image_size``
        (0: ``image_size / EVAL_CROP_FRACTION``, 256 for 224).
      random_flip: whether train crops are flipped left-right at random (half of them).
      channels: 3 (colour; grayscale images are repeated) or 1.
    """

    image_size: int = 224
    train_crop: str = "random_resized"
    scale_range: tuple[int, int] = (256, 480)
    eval_resize: int = 0
    random_flip: bool = True
    channels: int = 3

    @property
    def eval_side(self) -> int:
        """The shorter side eval images are resized to before their centre crop."""
        return self.eval_resize or round(self.image_size / EVAL_CROP_FRACTION)


def _decode_window(encoded, choose_window, crops: Crops):
    """Decode the window ``choose_window(shape)`` picks of an encoded image, resized to a uint8 square
    (rounded, as PIL's resize gives torchvision). A JPEG is decoded only inside the window."""
    tf = tfds_source.tensorflow()

    def jpeg():
        window = choose_window(tf.image.extract_jpeg_shape(encoded))
        return tf.image.decode_and_crop_jpeg(encoded, tf.stack(window), channels=crops.channels)

    def other():
        image = tf.io.decode_image(encoded, channels=crops.channels, expand_animations=False)
        top, left, height, width = choose_window(tf.shape(image))
        return image[top : top + height, left : left + width]

    image = tf.cond(tf.io.is_jpeg(encoded), jpeg, other)
    image = tf.image.resize(image, [crops.image_size, crops.image_size], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


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


def centre_window(shape, crops: Crops):
    """The centre square that resizing the shorter side to ``eval_side`` then cropping ``image_size`` keeps."""
    tf = tfds_source.tensorflow()
    shorter = tf.cast(tf.minimum(shape[0], shape[1]), tf.float32)
    side = tf.cast(tf.math.round(shorter * crops.image_size / crops.eval_side), tf.int32)
    return (shape[0] - side + 1) // 2, (shape[1] - side + 1) // 2, side, side


def train_image(encoded, key, crops: Crops):
    """A random crop of the image (as ``crops.train_crop`` says), resized and randomly flipped if asked (uint8)."""
    tf = tfds_source.tensorflow()
    crop_key, flip_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    if crops.train_crop == "scale_jitter":
        image = _decode_window(encoded, lambda shape: scale_jitter_window(shape, crop_key, crops), crops)
    else:
        image = _decode_window(encoded, lambda shape: random_resized_window(shape, crop_key), crops)
    return tf.image.stateless_random_flip_left_right(image, flip_key) if crops.random_flip else image


def eval_image(encoded, crops: Crops):
    """Resize the shorter side to ``eval_side`` and centre-crop ``image_size`` (a JPEG: only that window decoded)."""
    return _decode_window(encoded, lambda shape: centre_window(shape, crops), crops)
