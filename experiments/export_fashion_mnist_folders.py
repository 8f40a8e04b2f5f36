"""Write Fashion-MNIST as folder datasets for the transfer-learning study (``experiments/transfer.py``).

    python experiments/export_fashion_mnist_folders.py --data_dir DIR --out OUT

- ``OUT/pretrain``: classes 0-4 (T-shirt/top ... Coat), every train and test image (30,000 / 5,000);
- ``OUT/target_nN`` for N in 10, 100, 1000: classes 5-9 (Sandal ... Ankle boot) with N train images per
  class, nested (the first N of one seeded order per class, so N = 10 is inside N = 100), and all 5,000
  test images of those classes.

Each is ``PATH/train/CLASS/*.png`` and ``PATH/test/CLASS/*.png``, which the runs read through
``--config.dataset=folder:PATH`` like any user's data. Class folders are ``LABEL_NAME`` so that their sorted
order is Fashion-MNIST's. The images are Fashion-MNIST's own 28x28 grayscale pixels, losslessly as PNG.
Existing output folders are left as they are (delete OUT to write them again).
"""

import argparse
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root
from resnet_jax.data.sources import named  # noqa: E402

PRETRAIN_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
SHOTS = (10, 100, 1000)
ORDER_SEED = 2025


def folder_name(label: int, class_names: tuple[str, ...]) -> str:
    """'7_sneaker': sorts in label order, and says what the class is."""
    return f"{label}_{re.sub(r'[^a-z0-9]+', '_', class_names[label].lower()).strip('_')}"


def write_split(images: np.ndarray, labels: np.ndarray, rows: np.ndarray, directory: Path, names) -> None:
    """Write ``images[rows]`` as PNGs under ``directory/CLASS/``, named by their index in the original split."""
    for row in rows:
        target = directory / folder_name(int(labels[row]), names) / f"{row:05d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[row][..., 0], mode="L").save(target)


def nested_shots(labels: np.ndarray, classes, shots: int) -> np.ndarray:
    """The first ``shots`` train rows of each class in one seeded order per class (so smaller N are subsets)."""
    rng = np.random.default_rng(ORDER_SEED)
    chosen = [rng.permutation(np.flatnonzero(labels == label))[:shots] for label in classes]
    return np.sort(np.concatenate(chosen))


def export(data_dir: str, out: Path) -> list[Path]:
    """Write the pretraining folder and one target folder per N; returns their paths."""
    stored, spec = named.named_arrays("fashion_mnist", data_dir)
    train, test = stored["train"], stored["test"]
    names = spec.class_names
    folders = {out / "pretrain": (PRETRAIN_CLASSES, None)}
    folders.update({out / f"target_n{shots}": (TARGET_CLASSES, shots) for shots in SHOTS})
    for path, (classes, shots) in folders.items():
        if path.exists():
            print(f"{path} exists; left as it is")
            continue
        train_rows = (
            np.flatnonzero(np.isin(train["label"], classes))
            if shots is None
            else nested_shots(train["label"], classes, shots)
        )
        test_rows = np.flatnonzero(np.isin(test["label"], classes))
        partial = path.with_name(path.name + ".partial")
        write_split(train["image"], train["label"], train_rows, partial / "train", names)
        write_split(test["image"], test["label"], test_rows, partial / "test", names)
        partial.rename(path)
        print(f"wrote {path}: {len(train_rows)} train and {len(test_rows)} test images")
    return list(folders)


def main() -> None:
    """Parse the command line and export."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default="", help="where fashion_mnist is prepared ('' = TFDS's default)")
    parser.add_argument("--out", required=True, type=Path, help="directory to write the folder datasets into")
    args = parser.parse_args()
    export(args.data_dir, args.out.expanduser().resolve())


if __name__ == "__main__":
    main()
