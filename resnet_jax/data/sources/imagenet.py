"""ImageNet (ILSVRC 2012): offline preparation from the original tars, and its train and eval crops.

Preparation hands TFDS's own ``imagenet2012`` builder the two tars from ``--manual_dir`` after an md5
check against the values image-net.org publishes. The crops read only the JPEG window they need
(``decode_and_crop_jpeg``), then resize it to ``image_size`` with antialiasing, as PIL does for
torchvision, so torchvision-trained weights see the inputs they were trained on.
"""

from pathlib import Path

from resnet_jax.data.sources.checksum import Archive, verify_archive

ARCHIVES = (
    Archive("ILSVRC2012_img_train.tar", "1d675b47d978889d74fa0da5fadfb00e", "md5"),
    Archive("ILSVRC2012_img_val.tar", "29b22e2961454d5413ddabcf34fc5622", "md5"),
)


def prepare(data_dir: str, manual_dir: str | None, skip_checksum: bool = False) -> str:
    """Build TFDS ``imagenet2012`` in ``data_dir`` from the two tars in ``manual_dir``; no network."""
    import tensorflow_datasets as tfds

    for archive in ARCHIVES:
        verify_archive(Path(manual_dir).expanduser() / archive.filename, archive, skip_checksum)
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return str(builder.data_dir)
