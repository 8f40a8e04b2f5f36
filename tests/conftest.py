"""Shared test set-up: 8 simulated CPU devices, tests/ importable for the reference networks, helpers."""

import os
import sys

# Multi-device tests need several devices; XLA reads this once, before JAX is first imported.
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
from pathlib import Path

import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))


def random_variables(model, input_size: int, seed: int = 0) -> dict:
    """Variables of the right shapes filled from numpy, avoiding the slow XLA compile of ``model.init``.

    Kernels get He-like scale so activations stay O(1); running variances are positive.
    """
    from resnet_jax.models import abstract_variables

    rng = np.random.default_rng(seed)
    shapes = abstract_variables(model, input_size)

    def fill(path, leaf):
        name = path[-1].key
        if name in ("var", "scale"):
            return 0.5 + rng.random(leaf.shape, dtype=np.float32)
        fan_in = int(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 1
        std = np.sqrt(1.0 / fan_in) if len(leaf.shape) > 1 else 0.1
        return (std * rng.standard_normal(leaf.shape)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def in_memory_batches(split, start_step, process_index, process_count, per_process_batch, steps, **pipeline) -> list:
    """The first ``steps`` batches (numpy) of this process's in-memory train pipeline from ``start_step``, seed 0.

    ``pipeline`` gives ``augmentation`` and ``fill_colour`` (``in_memory.host_train_batches``' arguments).
    """
    from resnet_jax.data.pipelines import in_memory

    iterator = in_memory.host_train_batches(
        split,
        seed=0,
        start_step=start_step,
        per_process_batch=per_process_batch,
        process_index=process_index,
        process_count=process_count,
        **pipeline,
    )
    return [next(iterator) for _ in range(steps)]


@pytest.fixture(scope="session")
def prepared_cifar(tmp_path_factory):
    """``prepared_cifar(name)``: (TFDS data_dir, {'train': [(label, image)], 'test': [...]}) of a miniature
    CIFAR archive in the original binary format, prepared once per test worker through the prepare CLI."""
    from archives import write_cifar_archive

    from resnet_jax.data import prepare

    prepared = {}

    def get(name: str) -> tuple[str, dict]:
        if name not in prepared:
            directory = tmp_path_factory.mktemp(name)
            records = write_cifar_archive(directory, name)
            data_dir = str(directory / "tfds")
            prepare.main([name, "--data_dir", data_dir, "--manual_dir", str(directory), "--skip_checksum"])
            prepared[name] = data_dir, records
        return prepared[name]

    return get


def assert_whole_images(top1: float, num_examples: int) -> None:
    """A top-1 that counts whole images out of ``num_examples``: no padding counted, none dropped or doubled."""
    correct = top1 * num_examples
    assert 0 <= top1 <= 1 and abs(correct - round(correct)) < 1e-4, (top1, num_examples)


def main_command(workdir, *flags: str) -> list[str]:
    """The real command line, ``python -m resnet_jax.main``, on configs/default.py with ``flags``."""
    return [sys.executable, "-m", "resnet_jax.main", "--config=configs/default.py", f"--workdir={workdir}", *flags]


def assert_one_error_paragraph(result, pattern: str, workdir) -> None:
    """A user's mistake through the real command: exit code 2 (do not retry), one ``error:`` line matching
    ``pattern``, no traceback, and no workdir left behind."""
    import re

    from resnet_jax.errors import ExitCode

    assert result.returncode == ExitCode.USER_ERROR, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(pattern, errors[0]), result.stderr[-2000:]
    assert not Path(workdir).exists()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Under ``-n`` with ``--dist loadgroup``, the tests of one ``xdist_group`` (one SLURM cluster, one prepared
    dataset) must share a worker: stop at once where pytest-xdist could not name the group (pytest-xdist 3.8
    sets ``item._nodeid``, which pytest 9.2 no longer reads), instead of splitting the groups silently."""
    if not getattr(config.option, "loadgroup", False):
        return
    ungrouped = [item.nodeid for item in items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if ungrouped:
        raise pytest.UsageError(
            f"pytest-xdist did not group {len(ungrouped)} tests marked xdist_group (e.g. {ungrouped[0]}): this "
            "pytest and pytest-xdist do not work together; install the versions setup.py's dev extra names."
        )


def datasets_for(config, batch: int, eval_batch: int = 0, process_index: int = 0, process_count: int = 1):
    """``data.create_datasets`` as a run calls it, for a ConfigDict: its data settings, a global ``batch`` (and
    ``eval_batch``, default the same) over ``process_count`` processes, its seed and num_classes."""
    from resnet_jax import data
    from resnet_jax.train.settings import settings_of

    settings = settings_of(config)
    placement = data.Placement(batch, eval_batch or batch, process_index, process_count)
    return data.create_datasets(
        settings.data, placement, seed=settings.run.seed, num_classes=settings.model.num_classes
    )


@pytest.fixture
def toy_extensions(monkeypatch):
    """tests/toy_model.py, tests/toy_augmentation.py and tests/toy_option.py, registered for this test alone: each
    registry is a copy that the test's end puts back, so no other test sees the toys."""
    import importlib

    from resnet_jax.data.augment import examples, mixing
    from resnet_jax.models import options, registry

    monkeypatch.setattr(registry, "MODELS", dict(registry.MODELS))
    monkeypatch.setattr(mixing, "BATCH_AUGMENTATIONS", dict(mixing.BATCH_AUGMENTATIONS))
    monkeypatch.setattr(examples, "EXAMPLE_AUGMENTATIONS", dict(examples.EXAMPLE_AUGMENTATIONS))
    monkeypatch.setattr(options, "BY_NAME", dict(options.BY_NAME))

    def registered(name: str):  # importing registers the toy; a second test's registers it again
        return importlib.reload(sys.modules[name]) if name in sys.modules else importlib.import_module(name)

    return registered("toy_model"), registered("toy_augmentation"), registered("toy_option")
