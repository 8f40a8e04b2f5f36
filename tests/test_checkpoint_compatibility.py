"""Checkpoints written before a change to the model code restore after it, to the same outputs.

tests/fixtures/unit_checkpoints holds tiny ResNets covering every unit kind, shortcut, activation order,
gate, SE and stem, each saved by the package's ``Checkpointer`` with its eval logits, written by the commit
named in its logits.json (tests/fixtures/write_unit_checkpoints.py, run before the units were split into one
class per kind). Today's code must restore each strictly (same tree, same shapes) and give the same logits.
"""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from resnet_jax.models import ResNet
from resnet_jax.train.checkpoint import Checkpointer

FIXTURES = Path(__file__).parent / "fixtures" / "unit_checkpoints"
RECORD = json.loads((FIXTURES / "logits.json").read_text())


def _images() -> np.ndarray:
    size = RECORD["image_size"]
    return np.random.default_rng(0).standard_normal((2, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(RECORD["variants"]))
def test_checkpoint_written_before_the_unit_split_restores_to_the_same_logits(name):
    variant = RECORD["variants"][name]
    tiny = {**RECORD["tiny"], "stage_sizes": tuple(RECORD["tiny"]["stage_sizes"])}
    tiny["widths"] = tuple(tiny["widths"])
    model = ResNet(**tiny, **variant["fields"])
    abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), _images())
    checkpointer = Checkpointer(FIXTURES / name, asynchronous=False)
    try:
        restored = checkpointer.restore(dict(abstract), step=1)  # strict: another tree or shape is an error
    finally:
        checkpointer.close()
    logits = model.apply(restored, _images(), train=False)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(variant["logits"]), rtol=1e-5, atol=1e-5)
