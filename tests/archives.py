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
