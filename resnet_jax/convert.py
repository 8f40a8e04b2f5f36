"""Convert a torchvision-layout ResNet state_dict into this package's Flax variables.

Keys such as ``layer2.0.downsample.1.running_var`` map to ``batch_stats/layer2_0/downsample_bn/var``.
Convolution kernels go from OIHW to HWIO and the dense kernel from (out, in) to (in, out). The
mapping is strict: every Flax variable must be filled, with the right shape, and every key must be
used (``num_batches_tracked`` aside). A partial load is always an error that names the keys.
Torch itself is not imported: values may be torch tensors or numpy arrays.
"""

import re
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from flax import traverse_util

from resnet_jax.errors import IncompatibleCheckpoint
from resnet_jax.models import abstract_variables, create_model, parts

IGNORED_SUFFIXES = ("num_batches_tracked",)
SHAPE_IMAGE_SIZE = 64  # any size the strides leave at least one pixel for; global pooling makes shapes equal
DATA_PARALLEL_PREFIX = "module."  # torch.nn.DataParallel / DistributedDataParallel wrappers
TORCH_LEAF = {
    ("params", "kernel"): "weight",
    ("params", "scale"): "weight",
    ("params", "bias"): "bias",
    ("batch_stats", "mean"): "running_mean",
    ("batch_stats", "var"): "running_var",
}
TORCH_MODULE = {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}


def torch_key(flax_path: tuple[str, ...]) -> str:
    """``('batch_stats', 'layer2_0', 'downsample_bn', 'var')`` -> ``'layer2.0.downsample.1.running_var'``.

    Other module names are kept as they are: pre-activation nets' ``bn_final`` stays ``bn_final``.
    """
    collection, *modules, leaf = flax_path
    names = [TORCH_MODULE.get(module) or _torch_module(module) for module in modules]
    return ".".join([*names, TORCH_LEAF[(collection, leaf)]])


def indexed_torch_key(flax_path: tuple[str, ...]) -> str:
    """The torch key of a variable in a model named module by module after its PyTorch counterpart, an index
    written ``_N``: ``('params', 'blocks_1_0', 'conv_pw', 'kernel')`` -> ``'blocks.1.0.conv_pw.weight'``.

    EfficientNet and HRNet name their modules this way after timm's layout (``fuse_layers_0_1_0`` is
    ``fuse_layers.0.1.0``)."""
    collection, *modules, leaf = flax_path
    return ".".join([*(re.sub(r"_(\d+)", r".\1", module) for module in modules), TORCH_LEAF[(collection, leaf)]])


def _torch_module(module: str) -> str:
    """A block 'layer2_0' is 'layer2.0' in torchvision (block 0 of the Sequential layer2); others keep their name."""
    position = parts.block_position(module)
    return f"{position[0]}.{position[1]}" if position else module


def _to_numpy(value: Any) -> np.ndarray:
    """A float32 numpy copy of a torch tensor or array-like."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().float().numpy()  # .float(): numpy has no bfloat16
    return np.asarray(value, dtype=np.float32)


def _to_flax_layout(array: np.ndarray) -> np.ndarray:
    """OIHW conv kernels -> HWIO; (out, in) dense kernels -> (in, out); vectors unchanged."""
    if array.ndim == 4:
        return array.transpose(2, 3, 1, 0)
    if array.ndim == 2:
        return array.T
    return array


def summarise(items: list[str], limit: int = 12) -> str:
    """The first ``limit`` items, then how many more: errors stay readable for whole-model mismatches."""
    shown = ", ".join(items[:limit])
    return shown + (f", ... and {len(items) - limit} more" if len(items) > limit else "")


def _infer_num_classes(state_dict: Mapping[str, Any]) -> int:
    if "fc.weight" not in state_dict:
        raise ValueError("state_dict has no 'fc.weight'; pass num_classes= explicitly")
    return int(np.shape(state_dict["fc.weight"])[0])


def torch_keys(variables: Any) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    """torch key -> (Flax variable path, Flax shape) for every leaf of a (shapes-only) variables tree."""
    flat = traverse_util.flatten_dict(variables)
    return {torch_key(path): (path, tuple(leaf.shape)) for path, leaf in flat.items()}


def expected_torch_keys(name: str, num_classes: int) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    """torch key -> (Flax variable path, Flax shape) for every variable of model ``name``."""
    return _model_torch_keys(create_model(name, num_classes=num_classes))


def _model_torch_keys(model: Any) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    """``torch_keys`` of a built model (the parameter shapes do not depend on the image size)."""
    return torch_keys(abstract_variables(model, SHAPE_IMAGE_SIZE, model.input_channels))


def from_torchvision(state_dict: Mapping[str, Any], name: str, num_classes: int | None = None) -> dict:
    """Map a torchvision-layout ``state_dict`` to ``{'params', 'batch_stats'}`` for model ``name``.

    ``num_classes`` defaults to the rows of ``fc.weight``. Raises ValueError naming every unknown,
    missing or mis-shaped key; ``num_batches_tracked`` entries are ignored.
    """
    return from_torch_model(state_dict, create_model(name, num_classes=num_classes or 1), name, num_classes)


def from_torch_model(state_dict: Mapping[str, Any], model: Any, name: str, num_classes: int | None = None) -> dict:
    """``from_torchvision`` for a built model (a registered one with the run's variant fields, say), its
    head sized as the state_dict's ``fc.weight`` unless ``num_classes`` is given; ``name`` is for messages."""
    if state_dict and all(key.startswith(DATA_PARALLEL_PREFIX) for key in state_dict):
        state_dict = {key[len(DATA_PARALLEL_PREFIX) :]: value for key, value in state_dict.items()}
    model = model.clone(num_classes=num_classes or _infer_num_classes(state_dict))
    return from_state_dict(state_dict, _model_torch_keys(model), name)


def from_state_dict(state_dict: Mapping[str, Any], expected: dict, name: str) -> dict:
    """Fill the variables ``expected`` (from ``torch_keys``) from ``state_dict``, strictly: every unknown,
    missing or mis-shaped key is named in one ``IncompatibleCheckpoint``."""
    given = {key for key in state_dict if not key.endswith(IGNORED_SUFFIXES)}

    problems, misshaped, converted = [], [], {}
    if unknown := sorted(given - set(expected)):
        problems.append(f"{len(unknown)} unexpected keys (not part of {name!r}): {summarise(unknown)}")
    if missing := sorted(set(expected) - given):
        problems.append(f"{len(missing)} missing keys: {summarise(missing)}")
    for key in sorted(given & set(expected)):
        path, shape = expected[key]
        array = _to_flax_layout(_to_numpy(state_dict[key]))
        if array.shape != shape:
            misshaped.append(f"{key} {tuple(np.shape(state_dict[key]))} -> Flax {array.shape}, needs {shape}")
        converted[path] = jax.numpy.asarray(array)
    if misshaped:
        problems.append(f"{len(misshaped)} shape mismatches: {summarise(misshaped, limit=6)}")
    if problems:
        hint = f"is this a torchvision {name} checkpoint? `python -m resnet_jax.models` lists the architectures"
        raise IncompatibleCheckpoint(
            f"cannot convert state_dict to {name!r}:\n  " + "\n  ".join(problems) + f"\n  ({hint})"
        )
    return traverse_util.unflatten_dict(converted)
