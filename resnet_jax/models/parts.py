"""The names of a ResNet's parts, owned here: the model names its modules with these functions, and
everything that acts on a part (freezing, per-part learning rates, gradient-norm labels, re-initialising
the head, the torchvision converter) asks here instead of parsing the names itself.

Top-level modules follow torchvision's layout: the stem is ``conv1`` and ``bn1`` (a deep stem's first
two convolutions are ``conv1_0``, ``bn1_0``, ``conv1_1``, ``bn1_1``), block ``j`` of stage
``i`` is ``layer{i}_{j}`` (``layer{i}.{j}`` in torchvision), the classifier is ``fc``. A pre-activation
net's final BN-ReLU (``bn_final``) closes its last stage. The parts are ``stem``, ``layer1`` ...
``layerN`` and ``head`` (the classifier alone, which ``reinit_head`` and ``freeze='head'`` both mean).
"""

import re
from collections.abc import Iterable

STEM = "stem"
HEAD = "head"
STEM_MODULES = ("conv1", "bn1")
DEEP_STEM_MODULES = ("conv1_0", "bn1_0", "conv1_1", "bn1_1")  # ResNet-C's first two convs, before conv1
CLASSIFIER = "fc"
FINAL_NORM = "bn_final"
_BLOCK = re.compile(r"^layer(\d+)_(\d+)$")


def stage(stage_index: int) -> str:
    """The part name of stage ``stage_index`` (0-based): 'layer1', 'layer2', ..."""
    return f"layer{stage_index + 1}"


def block(stage_index: int, block_index: int) -> str:
    """The module name of a residual block: 'layer2_0' is the first block of the second stage."""
    return f"{stage(stage_index)}_{block_index}"


def block_position(module: str) -> tuple[str, int] | None:
    """'layer2_0' -> ('layer2', 0); None for a module that is not a residual block."""
    match = _BLOCK.match(module)
    return (f"layer{match.group(1)}", int(match.group(2))) if match else None


def part_of_modules(modules: Iterable[str]) -> dict[str, str]:
    """Each top-level module name (the keys of ``params``) -> its part: stem, layerN or head."""
    modules = list(modules)
    positions = {module: block_position(module) for module in modules}
    stages = sorted({position[0] for position in positions.values() if position}, key=lambda name: int(name[5:]))
    parts = {}
    for module in modules:
        if positions[module]:
            parts[module] = positions[module][0]
        elif module in STEM_MODULES or module in DEEP_STEM_MODULES:
            parts[module] = STEM
        elif module == FINAL_NORM and stages:
            parts[module] = stages[-1]
        elif module == CLASSIFIER:
            parts[module] = HEAD
        else:
            raise ValueError(f"{module!r} is not a module name of resnet_jax.models.parts")
    return parts


def part_names(modules: Iterable[str]) -> list[str]:
    """The parts a model with these top-level modules has, in order: stem, layer1, ..., head."""
    parts = set(part_of_modules(modules).values())
    stages = sorted(parts - {STEM, HEAD}, key=lambda name: int(name[5:]))
    return [*([STEM] if STEM in parts else []), *stages, *([HEAD] if HEAD in parts else [])]
