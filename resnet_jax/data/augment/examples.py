"""Augmentations of single examples registered by name: a run lists them in ``example_augmentations``, and each
pipeline applies them, in that order, after its own crops, flips and Random Erasing, to uint8 images.

An ``ExampleAugmentation`` gives one function per pipeline it supports:

- ``in_memory``: ``(images, key) -> images`` in JAX, on the uint8 NHWC global batch, traceable (it runs inside
  the jitted train step, or on the host CPU). The key is drawn from (seed, step), so every example's draws are
  a function of the seed and its step, as the package's own crops and erasing are.
- ``streamed``: ``(image, seed) -> image`` in TensorFlow, on one uint8 HWC image in tf.data, with stateless
  random ops; ``seed`` is derived from the example's own crop key, so a resumed run draws the same.

A pipeline with no function for a named augmentation refuses the run before it starts, as an unknown name is.
Registered once, from this package or any module of one's own (``tests/toy_augmentation.py``).
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from resnet_jax.data.streams import Stream, stream_key
from resnet_jax.errors import not_registered

NAMED_STREAM = 2**20  # folded into a streamed example's crop key, plus the augmentation's position in the run


@dataclasses.dataclass(frozen=True)
class ExampleAugmentation:
    """One augmentation of single examples, with a function for each pipeline it supports (None: not that one)."""

    name: str
    in_memory: Callable[[Any, Any], Any] | None = None
    streamed: Callable[[Any, Any], Any] | None = None

    def function(self, pipeline: str) -> Callable[[Any, Any], Any] | None:
        """Its function for ``pipeline`` ('in_memory' or 'streamed'), or None."""
        return getattr(self, pipeline)


EXAMPLE_AUGMENTATIONS: dict[str, ExampleAugmentation] = {}


def register_example_augmentation(augmentation: ExampleAugmentation) -> None:
    """Make ``augmentation`` available to runs as ``example_augmentations=(name,)``; a name taken is refused."""
    if augmentation.name in EXAMPLE_AUGMENTATIONS:
        raise ValueError(f"example augmentation {augmentation.name!r} is registered already; choose another name")
    if augmentation.in_memory is None and augmentation.streamed is None:
        raise ValueError(f"example augmentation {augmentation.name!r} needs an in_memory or a streamed function")
    EXAMPLE_AUGMENTATIONS[augmentation.name] = augmentation


def check_example_augmentations(names: Sequence[str], pipeline: str | None) -> str:
    """Why ``names`` cannot be applied by ``pipeline`` (None: not known yet): one is not registered (with the
    closest name), or has no function for that pipeline; or ''."""
    if problem := not_registered("example augmentation", names, EXAMPLE_AUGMENTATIONS):
        return problem
    for name in names:
        if pipeline is not None and EXAMPLE_AUGMENTATIONS[name].function(pipeline) is None:
            other = "streamed" if pipeline == "in_memory" else "in_memory"
            return (
                f"example augmentation {name!r} has no function for the {pipeline} pipeline, which feeds this "
                f"dataset (it has one for the {other} pipeline); give its registration a {pipeline} function, or "
                "drop it from example_augmentations"
            )
    return ""


def apply_in_memory(images: Any, names: Sequence[str], seed: int, step: Any) -> Any:
    """The uint8 global batch of ``step`` through the named augmentations, each with its own key of (seed, step)."""
    for position, name in enumerate(names):
        images = EXAMPLE_AUGMENTATIONS[name].in_memory(images, stream_key(seed, Stream.NAMED_EXAMPLES, step, position))
    return images


def streamed_train_image(train_image: Callable[[Any, Any], Any], names: Sequence[str]) -> Callable[[Any, Any], Any]:
    """``train_image(encoded, key)`` followed by the named augmentations, each seeded from the example's key."""
    if not names:
        return train_image
    import tensorflow as tf

    functions = [EXAMPLE_AUGMENTATIONS[name].streamed for name in names]

    def augmented(encoded, key):
        image = train_image(encoded, key)
        for position, function in enumerate(functions):
            image = function(image, tf.random.experimental.stateless_fold_in(key, NAMED_STREAM + position))
        return image

    return augmented
