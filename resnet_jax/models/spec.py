"""What a registered model is: the Flax module class, its keyword arguments, and the input it was designed for."""

import dataclasses
from typing import Any

from flax import linen as nn

IMAGENET_INPUT_SIZE = 224
CIFAR_INPUT_SIZE = 32


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: ``module(num_classes=..., **kwargs)`` builds it for ``input_size`` images.

    ``source`` names the paper (table, row) or reference implementation the architecture follows."""

    module: type[nn.Module]
    kwargs: dict[str, Any]
    input_size: int
    source: str
