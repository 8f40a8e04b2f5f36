"""Package-level contracts: the core imports no TensorFlow (accelerator images lack it)."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["resnet_jax", "resnet_jax.models", "resnet_jax.convert"])
def test_core_modules_do_not_import_tensorflow(module):
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorflow_datasets', 'torch'))\n"
        "print(heavy)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
