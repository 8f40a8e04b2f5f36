"""Convert a torchvision- or timm-layout state_dict into this package's Flax variables.

Keys such as ``layer2.0.downsample.1.running_var`` map to ``batch_stats/layer2_0/downsample_bn/var``.
timm's ResNets differ from torchvision's where they have more parts (``TIMM_RESNET_MODULES``: SE as 1x1
convolutions, ResNet-D's deep stem and pooled shortcut, Res2Net's splits); EfficientNet and HRNet name their
modules after timm's (``indexed_torch_key``). ``TIMM_NAMES`` is the one table of our names and timm's.
Convolution kernels go from OIHW to HWIO and the dense kernel from (out, in) to (in, out). The
mapping is strict: every Flax variable must be filled, with the right shape, and every key must be
used (``num_batches_tracked`` aside). A partial load is always an error that names the keys.
Torch itself is not imported: values may be torch tensors or numpy arrays.
"""

import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from flax import traverse_util

from resnet_jax.errors import IncompatibleCheckpoint
from resnet_jax.models import ResNet, abstract_variables, create_model, parts

IGNORED_SUFFIXES = ("num_batches_tracked",)
ExpectedKeys = dict[str, tuple[tuple[str, ...], tuple[int, ...]]]
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


# Our architectures that timm has too, and timm's name for each.
TIMM_NAMES = {
    **{name: name for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")},
    **{name: name for name in ("resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d")},
    **{name: name for name in ("wide_resnet50_2", "wide_resnet101_2", "resnet50d")},
    "se_resnet50": "seresnet50",
    "se_resnet101": "seresnet101",
    **{name: name for name in ("res2net50_26w_4s", "res2net101_26w_4s")},
    **{f"efficientnet_b{index}": f"efficientnet_b{index}" for index in range(8)},
    **{name: name for name in ("hrnet_w18_small", "hrnet_w18_small_v2")},
    **{f"hrnet_w{width}": f"hrnet_w{width}" for width in (18, 30, 32, 40, 44, 48, 64)},
}
# timm's efficientnet_b* were trained in PyTorch: symmetric padding and PyTorch's BN. Its tf_efficientnet_b*
# (weights ported from the paper's TensorFlow code) use the paper's settings, our registry's defaults.
TIMM_PYTORCH_EFFICIENTNET = {"padding": "symmetric", "bn_epsilon": 1e-5, "bn_momentum": 0.9}
# Where timm's ResNet modules are named unlike torchvision's: the deep stem is one Sequential (conv1.0, bn
# conv1.1, ReLU, conv1.3, ...), ResNet-D's shortcut puts its pool first, SE and Res2Net's splits are lists.
TIMM_RESNET_MODULES = {
    "conv1_0": "conv1.0",
    "bn1_0": "conv1.1",
    "conv1_1": "conv1.3",
    "bn1_1": "conv1.4",
}
TIMM_DEEP_STEM_LAST = "conv1.6"
TIMM_POOLED_SHORTCUT = {"downsample_conv": "downsample.1", "downsample_bn": "downsample.2"}
TIMM_SPLIT = re.compile(r"(conv|bn)2_(\d+)")
HEAD_KEYS = ("fc.weight", "classifier.weight")


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


def timm_key(flax_path: tuple[str, ...], model: Any) -> str:
    """The key of a variable of ``model`` in timm's state_dict of the same architecture."""
    if not isinstance(model, ResNet):
        return indexed_torch_key(flax_path)
    collection, *modules, leaf = flax_path
    names = []
    for depth, module in enumerate(modules):
        if depth == 0 and model.stem == "deep" and module == parts.STEM_MODULES[0]:
            names.append(TIMM_DEEP_STEM_LAST)
        elif module in TIMM_RESNET_MODULES:
            names.append(TIMM_RESNET_MODULES[module])
        elif model.shortcut == "D" and module in TIMM_POOLED_SHORTCUT:
            names.append(TIMM_POOLED_SHORTCUT[module])
        elif split := TIMM_SPLIT.fullmatch(module):
            names.append(f"{split.group(1)}s.{split.group(2)}")
        else:
            names.append(TORCH_MODULE.get(module) or _torch_module(module))
    return ".".join([*names, TORCH_LEAF[(collection, leaf)]])


def _to_numpy(value: Any) -> np.ndarray:
    """A float32 numpy copy of a torch tensor or array-like."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().float().numpy()  # .float(): numpy has no bfloat16
    return np.asarray(value, dtype=np.float32)


def _to_flax_layout(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """OIHW conv kernels -> HWIO (a 1x1 one -> a dense (in, out) kernel where ``shape`` is a dense kernel's:
    timm's SE layers are convolutions); (out, in) dense kernels -> (in, out); vectors unchanged."""
    if array.ndim == 4 and len(shape) == 2 and array.shape[2:] == (1, 1):
        return array[:, :, 0, 0].T
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
    """The rows of the classifier's weight (``fc`` in ResNets, ``classifier`` in timm's other families)."""
    for key in HEAD_KEYS:
        if key in state_dict:
            return int(np.shape(state_dict[key])[0])
    raise ValueError(f"state_dict has none of {HEAD_KEYS}; pass num_classes= explicitly")


def torch_keys(variables: Any, key: Callable[[tuple[str, ...]], str] = torch_key) -> ExpectedKeys:
    """torch key (torchvision's, or as ``key`` writes it) -> (Flax variable path, Flax shape) for every leaf of a
    (shapes-only) variables tree."""
    flat = traverse_util.flatten_dict(variables)
    return {key(path): (path, tuple(leaf.shape)) for path, leaf in flat.items()}


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
    """A torchvision- or timm-layout ``state_dict`` (whichever its keys are) for a built model (a registered one
    with the run's variant fields, say), its head sized as the state_dict's classifier unless ``num_classes`` is
    given; ``name`` is for messages. An EfficientNet or HRNet reads timm's layout only."""
    state_dict = _without_wrapper_prefix(state_dict)
    model = model.clone(num_classes=num_classes or _infer_num_classes(state_dict))
    variables = abstract_variables(model, SHAPE_IMAGE_SIZE, model.input_channels)
    layouts = {"timm": torch_keys(variables, lambda path: timm_key(path, model))}
    if isinstance(model, ResNet):
        layouts = {"torchvision": torch_keys(variables), **layouts}
    given = {key for key in state_dict if not key.endswith(IGNORED_SUFFIXES)}
    layout = min(layouts, key=lambda layout: len(given ^ set(layouts[layout])))  # first on a tie: torchvision
    return from_state_dict(state_dict, layouts[layout], name, layout)


def from_timm(state_dict: Mapping[str, Any], name: str, num_classes: int | None = None, timm_name: str = "") -> dict:
    """Map the state_dict of timm's ``timm_name`` (default ``TIMM_NAMES[name]``) to ``{'params', 'batch_stats'}``
    for ``timm_model(name, ...)``: strict like ``from_torchvision``, every key used and every variable filled."""
    state_dict = _without_wrapper_prefix(state_dict)
    expected = expected_timm_keys(name, num_classes or _infer_num_classes(state_dict), timm_name)
    return from_state_dict(state_dict, expected, name, "timm")


def timm_model(name: str, num_classes: int, timm_name: str = "") -> Any:
    """Our ``name`` set up to compute what timm's ``timm_name`` (default ``TIMM_NAMES[name]``) computes: the
    registry's model, except timm's PyTorch-trained ``efficientnet_b*`` (PyTorch padding and BatchNorm)."""
    if name not in TIMM_NAMES:
        raise IncompatibleCheckpoint(
            f"timm has no counterpart of {name!r} in resnet_jax.convert.TIMM_NAMES; the models it has: "
            f"{', '.join(TIMM_NAMES)}"
        )
    timm_name = timm_name or TIMM_NAMES[name]
    overrides = TIMM_PYTORCH_EFFICIENTNET if timm_name.startswith("efficientnet_") else {}
    return create_model(name, num_classes=num_classes, **overrides)


def expected_timm_keys(name: str, num_classes: int, timm_name: str = "") -> ExpectedKeys:
    """timm key -> (Flax variable path, Flax shape) for every variable of ``timm_model(name, ...)``."""
    model = timm_model(name, num_classes, timm_name)
    return torch_keys(
        abstract_variables(model, SHAPE_IMAGE_SIZE, model.input_channels), lambda path: timm_key(path, model)
    )


def _without_wrapper_prefix(state_dict: Mapping[str, Any]) -> Mapping[str, Any]:
    """The state_dict without DataParallel's ``module.`` prefix, where every key has it."""
    if state_dict and all(key.startswith(DATA_PARALLEL_PREFIX) for key in state_dict):
        return {key[len(DATA_PARALLEL_PREFIX) :]: value for key, value in state_dict.items()}
    return state_dict


def from_state_dict(
    state_dict: Mapping[str, Any], expected: ExpectedKeys, name: str, layout: str = "torchvision"
) -> dict:
    """Fill the variables ``expected`` (from ``torch_keys``) from ``state_dict``, strictly: every unknown,
    missing or mis-shaped key is named in one ``IncompatibleCheckpoint`` (``layout`` names the key layout)."""
    given = {key for key in state_dict if not key.endswith(IGNORED_SUFFIXES)}

    problems, misshaped, converted = [], [], {}
    if unknown := sorted(given - set(expected)):
        problems.append(f"{len(unknown)} unexpected keys (not part of {name!r}): {summarise(unknown)}")
    if missing := sorted(set(expected) - given):
        problems.append(f"{len(missing)} missing keys: {summarise(missing)}")
    for key in sorted(given & set(expected)):
        path, shape = expected[key]
        array = _to_flax_layout(_to_numpy(state_dict[key]), shape)
        if array.shape != shape:
            misshaped.append(f"{key} {tuple(np.shape(state_dict[key]))} -> Flax {array.shape}, needs {shape}")
        converted[path] = jax.numpy.asarray(array)
    if misshaped:
        problems.append(f"{len(misshaped)} shape mismatches: {summarise(misshaped, limit=6)}")
    if problems:
        hint = f"is this a {layout} {name} checkpoint? `python -m resnet_jax.models` lists the architectures"
        raise IncompatibleCheckpoint(
            f"cannot convert state_dict to {name!r}:\n  " + "\n  ".join(problems) + f"\n  ({hint})"
        )
    return traverse_util.unflatten_dict(converted)
