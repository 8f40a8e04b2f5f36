"""Package contracts: the core imports no TensorFlow, tfds, clu or ml_collections (accelerator images lack them)."""

import subprocess
import sys

import pytest

CORE = [
    "resnet_jax",
    "resnet_jax.models",
    "resnet_jax.convert",
    "resnet_jax.train.step",
    "resnet_jax.train.optim",
    "resnet_jax.train.sharding",
    "resnet_jax.train.state",
    "resnet_jax.benchmark",
    "resnet_jax.benchmark_reference",
]
FORBIDDEN = ("tensorflow", "tensorflow_datasets", "torch", "clu", "ml_collections")


@pytest.mark.parametrize("module", CORE)
def test_core_modules_do_not_import_tensorflow(module):
    code = (
        f"import sys, {module}\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(heavy)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
