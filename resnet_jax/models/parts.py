"""The names of a ResNet's parts, owned here: the model names its modules with these functions, and
everything that acts on a part (freezing, per-part learning rates, gradient-norm labels, re-initialising
the head, the torchvision converter) asks here instead of parsing the names itself.

Top-level modules follow torchvision's layout: the stem is ``conv1`` and ``bn1`` (a deep stem's first
two convolutions are ``conv1_0``, ``bn1_0``, ``conv1_1``, ``bn1_1``), block ``j`` of stage
``i`` is ``layer{i}_{j}`` (``layer{i}.{j}`` in torchvision), the classifier is ``fc``. A pre-activation
net's final BN-ReLU (``bn_final``) closes its last stage. The parts are ``stem``, ``layer1`` ...
``layerN`` and ``head`` (the classifier alone, which ``reinit_head`` and ``freeze='head'`` both mean).

EfficientNet and HRNet keep timm's names; ``FAMILY_PARTS`` says which of their modules make each part (stage
N is ``layerN`` in every family: an EfficientNet's ``blocks_{N-1}_*``, an HRNet's ``transition{N-1}`` and
``stage{N}``; their heads' convolutions close the last stage).
"""

import re
from collections.abc import Callable, Iterable

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


def _stage(number_group: int, offset: int = 0) -> Callable[[re.Match], str]:
    """The part of a module whose name's group ``number_group`` numbers its stage (``offset`` added)."""
    return lambda match: stage(int(match.group(number_group)) - 1 + offset)


LAST_STAGE = "last stage"  # a module that closes the network's last stage (pre-activation's bn_final, heads' convs)
# Each family's top-level modules, told apart by a module only that family has: (pattern, part) in order.
FAMILY_PARTS = {
    CLASSIFIER: (  # ResNet
        ("|".join(STEM_MODULES + DEEP_STEM_MODULES), STEM),
        (_BLOCK.pattern.strip("^$"), _stage(1)),
        (FINAL_NORM, LAST_STAGE),
        (CLASSIFIER, HEAD),
    ),
    "conv_stem": (  # EfficientNet: blocks_{stage from 0}_{unit}, then the 1x1 head conv
        ("conv_stem|bn1", STEM),
        (r"blocks_(\d+)_\d+", _stage(1, offset=1)),
        ("conv_head|bn2", LAST_STAGE),
        ("classifier", HEAD),
    ),
    "final_layer_0": (  # HRNet: transition{k} opens stage k + 1; the classification head closes stage 4
        ("conv1|bn1|conv2|bn2", STEM),
        (r"layer(\d+)_\d+", _stage(1)),
        (r"transition(\d+)_[\d_]+", _stage(1, offset=1)),
        (r"stage(\d+)_\d+", _stage(1)),
        (r"(incre_modules|downsamp_modules|final_layer)_[\d_]+", LAST_STAGE),
        ("classifier", HEAD),
    ),
}


def part_of_modules(modules: Iterable[str]) -> dict[str, str]:
    """Each top-level module name (the keys of ``params``) -> its part: stem, layerN or head."""
    modules = list(modules)
    family = next((FAMILY_PARTS[key] for key in FAMILY_PARTS if key in modules), FAMILY_PARTS[CLASSIFIER])
    parts = {}
    for module in modules:
        for pattern, part in family:
            if match := re.fullmatch(pattern, module):
                parts[module] = part if isinstance(part, str) else part(match)
                break
        else:
            raise ValueError(f"{module!r} is not a module name of resnet_jax.models.parts")
    stages = sorted({part for part in parts.values() if part.startswith("layer")}, key=lambda name: int(name[5:]))
    return {module: stages[-1] if part == LAST_STAGE and stages else part for module, part in parts.items()}


def part_names(modules: Iterable[str]) -> list[str]:
    """The parts a model with these top-level modules has, in order: stem, layer1, ..., head."""
    parts = set(part_of_modules(modules).values())
    stages = sorted(parts - {STEM, HEAD}, key=lambda name: int(name[5:]))
    return [*([STEM] if STEM in parts else []), *stages, *([HEAD] if HEAD in parts else [])]
