"""A Python environment holding only what an accelerator image has: jax, flax, optax, orbax-checkpoint, numpy,
ml_collections, clu and tensorboardX (the TensorBoard writer), with what they require, and no TensorFlow.

The packages are symbolic links into this interpreter's site-packages, so building the environment costs
no download; a process started with ``python -S`` and ``PYTHONPATH``-free ``sys.path`` set to it sees nothing else.
"""

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

IMAGE = ("jax", "flax", "optax", "orbax-checkpoint", "numpy", "ml-collections", "clu", "tensorboardX")
NEVER = re.compile(r"^(tensorflow|tf-keras|keras)")  # what the image must not hold, whoever requires it


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(names=IMAGE) -> list[metadata.Distribution]:
    """The installed distributions ``names`` need, recursively (extras left out), without TensorFlow."""
    found: dict[str, metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = _normalised(pending.pop())
        if name in found or NEVER.match(name):
            continue
        found[name] = metadata.distribution(name)
        for line in found[name].requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return list(found.values())


def link_environment(site: Path, names=IMAGE) -> list[str]:
    """Link the top-level packages, modules and metadata of ``requirement_closure(names)`` into ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    linked = []
    for distribution in requirement_closure(names):
        tops = {Path(str(file)).parts[0] for file in distribution.files or []}
        for top in sorted(tops - {"..", "__pycache__"}):
            source = Path(distribution.locate_file(top))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
        linked.append(distribution.metadata["Name"])
    return linked
