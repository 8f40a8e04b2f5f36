"""Writers of miniature dataset archives in the exact original formats, for offline preparation tests."""

import io
import tarfile
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def cifar_records(rng: np.random.Generator, count: int, num_classes: int) -> tuple[bytes, list]:
    """Binary CIFAR records: label byte(s), then 1024 red, 1024 green, 1024 blue bytes (row-major).

    Returns the bytes and the (labels, HWC image) of every record. CIFAR-100 records carry the coarse
    label first and the fine label second.
    """
    fine = rng.integers(0, num_classes, count)
    planes = rng.integers(0, 256, (count, 3, 32, 32), dtype=np.uint8)
    label_bytes = [fine[:, None]] if num_classes == 10 else [fine[:, None] // 5, fine[:, None]]
    records = np.concatenate([*[b.astype(np.uint8) for b in label_bytes], planes.reshape(count, -1)], axis=1)
    examples = [(int(label), plane.transpose(1, 2, 0)) for label, plane in zip(fine, planes, strict=True)]
    return records.tobytes(), examples


def write_cifar_archive(directory: Path, name: str, per_train_file: int = 20, num_test: int = 30, seed: int = 0):
    """Write cifar-10-binary.tar.gz or cifar-100-binary.tar.gz; returns {'train': [...], 'test': [...]}."""
    rng = np.random.default_rng(seed)
    examples = {"train": [], "test": []}
    if name == "cifar10":
        path, prefix, classes = directory / "cifar-10-binary.tar.gz", "cifar-10-batches-bin", 10
        train_files = [f"data_batch_{i}.bin" for i in range(1, 6)]
        test_file = "test_batch.bin"
        metadata = {"batches.meta.txt": "\n".join(CIFAR10_CLASSES) + "\n"}
    else:
        path, prefix, classes = directory / "cifar-100-binary.tar.gz", "cifar-100-binary", 100
        train_files, test_file, per_train_file = ["train.bin"], "test.bin", 5 * per_train_file
        metadata = {
            "coarse_label_names.txt": "\n".join(f"superclass_{i}" for i in range(20)) + "\n",
            "fine_label_names.txt": "\n".join(f"class_{i}" for i in range(100)) + "\n",
        }
    with tarfile.open(path, "w:gz") as tar:
        for filename in train_files:
            data, records = cifar_records(rng, per_train_file, classes)
            examples["train"] += records
            _add(tar, f"{prefix}/{filename}", data)
        data, examples["test"] = cifar_records(rng, num_test, classes)
        _add(tar, f"{prefix}/{test_file}", data)
        for filename, text in metadata.items():
            _add(tar, f"{prefix}/{filename}", text.encode())
    return examples


IMAGENET_TRAIN_TAR, IMAGENET_VAL_TAR = "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"


def jpeg_bytes(rng: np.random.Generator, height: int, width: int) -> bytes:
    """A real baseline JPEG of smooth random colours (so it compresses like a photo)."""
    from PIL import Image

    coarse = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            _add(tar, name, data)
    return buffer.getvalue()


def write_imagenet_archives(
    directory: Path,
    synsets: list[str],
    per_class: int = 3,
    num_val: int = 6,
    seed: int = 0,
    size_range=(40, 90),
    corrupt: tuple[str, ...] = (),
) -> dict[str, dict[str, tuple[str, bytes]]]:
    """Write ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in the original layout, with real JPEGs.

    The train tar holds one uncompressed tar per synset (``n01440764.tar``) of ``n01440764_K.JPEG`` files
    (K = 0, 1, ...); the val tar holds ``ILSVRC2012_val_%08d.JPEG`` files, whose labels are the official
    ones for those numbers (TFDS ships them). File names in ``corrupt`` get a truncated JPEG instead
    (a broken download).
    Returns ``{split: {file_name: (synset or None, jpeg bytes)}}``.
    """
    rng = np.random.default_rng(seed)

    def random_jpeg() -> bytes:
        height, width = rng.integers(*size_range, size=2)
        return jpeg_bytes(rng, int(height), int(width))

    def damage(images: dict[str, bytes]) -> dict[str, bytes]:
        return {name: data[: len(data) // 3] if name in corrupt else data for name, data in images.items()}

    written = {"train": {}, "validation": {}}
    class_tars = {}
    for synset in synsets:
        images = {f"{synset}_{number}.JPEG": random_jpeg() for number in range(per_class)}
        images = damage(images)
        written["train"].update({name: (synset, data) for name, data in images.items()})
        class_tars[f"{synset}.tar"] = _tar_bytes(images)
    (directory / IMAGENET_TRAIN_TAR).write_bytes(_tar_bytes(class_tars))
    val_images = damage({f"ILSVRC2012_val_{number:08d}.JPEG": random_jpeg() for number in range(1, num_val + 1)})
    written["validation"] = {name: (None, data) for name, data in val_images.items()}
    (directory / IMAGENET_VAL_TAR).write_bytes(_tar_bytes(val_images))
    return written


FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: 0x00 0x00, type 0x08, the number of dimensions, each size as a
    big-endian uint32, then the values in row-major order (LeCun's MNIST format)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_fashion_mnist_files(directory: Path, num_train: int = 24, num_test: int = 10, seed: int = 0, mtime=0):
    """Write the four gzipped IDX files of Fashion-MNIST; returns {split: [(label, 28x28x1 image)]}.

    ``mtime`` goes into each gzip header, so two writes of the same content differ in their bytes
    (as Debian's re-compressed copies differ from upstream's).
    """
    import gzip

    rng = np.random.default_rng(seed)
    examples = {}
    for split, count in (("train", num_train), ("test", num_test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count).astype(np.uint8)
        for filename, array in zip(FASHION_MNIST_FILES[split], (images, labels), strict=True):
            with open(directory / filename, "wb") as raw, gzip.GzipFile(filename, "wb", fileobj=raw, mtime=mtime) as gz:
                gz.write(idx_bytes(array))
        examples[split] = [(int(label), image[..., None]) for label, image in zip(labels, images, strict=True)]
    return examples


PHOTO_CLASSES = ("owl", "Bee", "cat")  # sorted as torchvision sorts: 'Bee' < 'cat' < 'owl'
PHOTO_SIZES = ((72, 96), (80, 66))  # two sizes, both above the in-memory limit of 64 pixels


def write_photos(root: Path, per_class: dict[str, int], seed: int = 0) -> dict[str, list]:
    """``root/SPLIT/CLASS/NAME`` photos of two sizes, alternately PNG and JPEG, plus one grayscale PNG in the
    train split; returns {split: [(class name, format, pixels as written, as RGB)]}."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    written = {split: [] for split in per_class}
    for split, count in per_class.items():
        for name in PHOTO_CLASSES:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = rng.integers(0, 256, (*PHOTO_SIZES[index % 2], 3), dtype=np.uint8)
                fmt = ("png", "jpeg")[index % 2]
                Image.fromarray(pixels).save(root / split / name / f"{index:02d}.{fmt}", quality=95)
                written[split].append((name, fmt, pixels))
    gray = rng.integers(0, 256, PHOTO_SIZES[0], dtype=np.uint8)
    Image.fromarray(gray).save(root / "train" / PHOTO_CLASSES[0] / "gray.png")
    written["train"].append((PHOTO_CLASSES[0], "png", np.repeat(gray[..., None], 3, axis=-1)))
    return written
