"""Package contracts: the core imports no TensorFlow, tfds, clu or ml_collections (accelerator images lack them),
the train program and the benchmark add only clu's metrics (pure Python), and the accelerator extras install
the core's JAX, with gcsfs for gs:// paths (as the gcs extra does); and no module is longer than 400 lines."""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

CORE = [
    "resnet_jax",
    "resnet_jax.models",
    "resnet_jax.convert",
    "resnet_jax.train.step",
    "resnet_jax.train.optim",
    "resnet_jax.train.sharding",
    "resnet_jax.data",
    "resnet_jax.data.augment.normalisation",
    "resnet_jax.data.pipelines.in_memory",
    "resnet_jax.data.sources.arrays",
    "resnet_jax.train.feed",
    "resnet_jax.train.state",
    "resnet_jax.benchmark_reference",
]
WITH_METRICS = ["resnet_jax.train.program", "resnet_jax.benchmark"]  # the loop's program: clu.metrics accumulates
FORBIDDEN = ("tensorflow", "tensorflow_datasets", "torch", "clu", "ml_collections")
MAX_MODULE_LINES = 400  # a module a newcomer reads in one sitting; split one that grows past it
PACKAGE = Path(__file__).resolve().parents[1] / "resnet_jax"


def test_no_module_of_the_package_is_over_400_lines():
    sizes = {path.relative_to(PACKAGE.parent): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert len(sizes) > 50  # the package was found
    assert not {path: size for path, size in sizes.items() if size > MAX_MODULE_LINES}


def test_core_modules_do_not_import_tensorflow_or_the_config_and_metric_libraries():
    """One fresh interpreter imports the core modules one by one and names the first that pulls in a library
    the accelerator images lack (the import set only grows, so a later module cannot hide an earlier one)."""
    with_metrics = tuple(name for name in FORBIDDEN if name != "clu")
    code = (
        "import importlib, sys\n"
        f"for modules, forbidden in (({CORE!r}, {FORBIDDEN!r}), ({WITH_METRICS!r}, {with_metrics!r})):\n"
        "    for module in modules:\n"
        "        importlib.import_module(module)\n"
        "        heavy = sorted(m for m in sys.modules if m.split('.')[0] in forbidden)\n"
        "        assert not heavy, f'{module} imports {heavy}'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_accelerator_extras_install_the_cores_jax_with_their_plugin():
    from packaging.requirements import Requirement

    requirements = [Requirement(line) for line in metadata.requires("resnet_jax")]
    jax = {str(r.marker): r for r in requirements if r.name == "jax"}
    core = jax.pop("None")
    assert not core.extras
    assert {marker: (r.extras, r.specifier) for marker, r in jax.items()} == {
        'extra == "cuda12"': ({"cuda12"}, core.specifier),
        'extra == "tpu"': ({"tpu"}, core.specifier),
        'extra == "k8s"': ({"k8s"}, core.specifier),
    }


def test_the_gcs_extra_and_the_extras_of_pods_give_gs_paths_without_tensorflow():
    from packaging.requirements import Requirement

    requirements = [Requirement(line) for line in metadata.requires("resnet_jax")]
    gcsfs = {str(r.marker): r.specifier for r in requirements if r.name == "gcsfs"}
    assert set(gcsfs) == {f'extra == "{extra}"' for extra in ("gcs", "dev", "cuda12", "tpu")}
    assert len(set(gcsfs.values())) == 1  # one range, declared once
