"""Fine-tuning: load pretrained variables (this package's checkpoints, torchvision or timm files) into a model."""

import os
from typing import Any

import numpy as np
from absl import logging
from flax import traverse_util

from resnet_jax.convert import from_torch_model
from resnet_jax.errors import MissingDependency
from resnet_jax.models import parts
from resnet_jax.train.checkpoint import check_compatible, load_variables
from resnet_jax.train.paths import resolve

TORCH_SUFFIXES = (".pth", ".pt", ".bin")


def load(path: str | os.PathLike, model: Any, model_name: str) -> dict:
    """``{'params', 'batch_stats'}`` from a workdir/checkpoint of this package or a torchvision- or timm-layout
    ``.pth`` of ``model`` (the run's network ``model_name``, variant fields included; the keys say which layout)."""
    path = resolve(path)
    if path.suffix in TORCH_SUFFIXES:
        try:
            import torch
        except ImportError as error:
            raise MissingDependency("loading a .pth file needs torch: pip install -e '.[torch]'") from error
        with path.open("rb") as file:  # local or gs://
            state_dict = torch.load(file, map_location="cpu", weights_only=True)
        return from_torch_model(state_dict.get("state_dict", state_dict), model, model_name)
    return load_variables(path)


def merge(fresh: dict, loaded: dict, reinit_head: bool = False) -> dict:
    """Take every variable from ``loaded`` except the head (the model's ``parts.HEAD``, the same parameters
    that ``freeze='head'`` freezes), which stays fresh if asked or if its shape differs.

    Anything else missing or mis-shaped is an error naming it (a checkpoint of another architecture).
    """
    flat_fresh = traverse_util.flatten_dict(fresh, sep="/")
    flat_loaded = traverse_util.flatten_dict(loaded, sep="/")
    head = {module for module, part in parts.part_of_modules(fresh["params"]).items() if part == parts.HEAD}

    def keep_fresh(path: str) -> bool:
        is_head = path.split("/")[1] in head
        differs = path not in flat_loaded or np.shape(flat_loaded[path]) != np.shape(flat_fresh[path])
        return is_head and (reinit_head or differs)

    body = {path for path in flat_fresh if not keep_fresh(path)}
    check_compatible(
        traverse_util.unflatten_dict(
            {p: v for p, v in flat_loaded.items() if p in body or p.split("/")[1] not in head}, sep="/"
        ),
        traverse_util.unflatten_dict({p: flat_fresh[p] for p in body}, sep="/"),
        "the init_from checkpoint",
    )
    merged: dict[str, Any] = {p: np.asarray(flat_loaded[p] if p in body else v) for p, v in flat_fresh.items()}
    fresh_paths = sorted(set(flat_fresh) - body)
    why = "reinit_head" if reinit_head else "shape differs"
    reinitialised = f"{', '.join(fresh_paths)} ({why})" if fresh_paths else "none"
    loaded_values = sum(np.size(flat_fresh[p]) for p in body)
    logging.info(
        "init_from: loaded %d arrays (%s values); re-initialised %s.", len(body), f"{loaded_values:,}", reinitialised
    )
    return traverse_util.unflatten_dict(merged, sep="/")
