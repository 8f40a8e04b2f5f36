"""Write stand-in CIFAR-10 and ImageNet archives in the original formats and prepare them, for input benchmarks.

    python experiments/input_benchmark_data.py --workdir /tmp/input_bench

CIFAR-10 is full size (50,000 + 10,000 random images). The ImageNet stand-in has 1,000 real JPEGs of
ImageNet-like sizes (shorter side 300-500 pixels) in the two original tars; the pipeline's per-image cost
does not depend on how many there are. Both are prepared with the real ``resnet_jax.data.prepare`` code
(with --skip_checksum: they are not the official archives). Then measure, for example:

    python -m resnet_jax.benchmark --input_config configs/cifar10.py:resnet20 --data_dir /tmp/input_bench/tfds \\
        --batch_size 128 --steps 300 --json
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from archives import write_cifar_archive, write_imagenet_archives  # noqa: E402

from resnet_jax.data import prepare

IMAGENET_SYNSETS = ["n01440764", "n01443537", "n01484850", "n01491361", "n01494475"]


def main() -> None:
    """Write the archives under --workdir and prepare both datasets in --workdir/tfds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    workdir = Path(parser.parse_args().workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    write_cifar_archive(workdir, "cifar10", per_train_file=10_000, num_test=10_000)
    write_imagenet_archives(workdir, IMAGENET_SYNSETS, per_class=160, num_val=200, size_range=(300, 500))
    for dataset in ("cifar10", "imagenet2012"):
        prepare.main([dataset, "--data_dir", str(workdir / "tfds"), "--manual_dir", str(workdir), "--skip_checksum"])


if __name__ == "__main__":
    main()
