"""Fine-tuning: load pretrained variables (this package's checkpoints, torchvision or timm files) into a model."""

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from absl import logging
from flax import traverse_util

from resnet_jax.convert import TIMM_PYTORCH_EFFICIENTNET, from_torch_model
from resnet_jax.errors import ConfigError, MissingDependency
from resnet_jax.models import parts
from resnet_jax.models.efficientnet import EfficientNet
from resnet_jax.models.fields import CONVENTION_FIELDS
from resnet_jax.paths import resolve
from resnet_jax.train.checkpoint import check_compatible, load_variables, recorded_model

TORCH_SUFFIXES = (".pth", ".pt", ".bin")


def load(path: str | os.PathLike, model: Any, model_name: str, conventions: Mapping[str, Any] | None = None) -> dict:
    """``{'params', 'batch_stats'}`` from a workdir/checkpoint of this package or a torchvision- or timm-layout
    ``.pth`` of ``model`` (the run's network ``model_name``, variant fields included; the keys say which layout).

    ``conventions`` are the framework conventions the config sets (``models.fields.convention_overrides``). A
    ``.pth`` EfficientNet must have all of them set, since its keys do not tell timm's PyTorch-trained network
    from its TensorFlow port (``ConfigError`` otherwise); the other families compute as PyTorch does."""
    path = resolve(path)
    if path.suffix in TORCH_SUFFIXES:
        _log_conventions(path, model, model_name, conventions or {})
        try:
            import torch
        except ImportError as error:
            raise MissingDependency("loading a .pth file needs torch: pip install -e '.[torch]'") from error
        with path.open("rb") as file:  # local or gs://
            state_dict = torch.load(file, map_location="cpu", weights_only=True)
        return from_torch_model(state_dict.get("state_dict", state_dict), model, model_name)
    return load_variables(path)


def mismatch_advice(path: str | os.PathLike, model_name: str) -> str:
    """What to do when the init_from checkpoint at ``path`` does not fit the run's ``model_name``: name both models
    when the checkpoint's run recorded its own (a PyTorch file is read by name, so never mismatches by it)."""
    saved = None if resolve(path).suffix in TORCH_SUFFIXES else recorded_model(path)
    if saved and saved != model_name:
        return (
            f"init_from={path} holds {saved}, and this run builds {model_name}: set --config.model={saved} (with "
            f"the options its run set), or give init_from a checkpoint of {model_name}."
        )
    return (
        f"init_from={path} holds another variant of {model_name}: set the options its run set (its config.json), "
        f"or give init_from a checkpoint of this run's {model_name}."
    )


def _log_conventions(path: Any, model: Any, model_name: str, conventions: Mapping[str, Any]) -> None:
    """Say how the network loaded from PyTorch file ``path`` computes; refuse an EfficientNet whose config leaves
    that open."""
    if not isinstance(model, EfficientNet):
        logging.info(
            "init_from: %s is a PyTorch file; %s computes as PyTorch's network did: symmetric padding, "
            "BatchNorm epsilon 1e-5 and momentum 0.1 (the model's own).",
            path,
            model_name,
        )
        return
    if missing := [name for name in CONVENTION_FIELDS if name not in conventions]:
        tensorflow = {name: getattr(EfficientNet, name) for name in CONVENTION_FIELDS}
        raise ConfigError(
            f"init_from={path} is a PyTorch file of an EfficientNet, and its keys do not say which network it "
            f"was: timm's {model_name} (trained in PyTorch: {_flags(TIMM_PYTORCH_EFFICIENTNET)}) or "
            f"tf_{model_name} (the paper's TensorFlow weights, ported: {_flags(tensorflow)}). Loaded with the other "
            f"one's padding and BatchNorm constants, it computes something else. Set the one it is; the config "
            f"leaves {', '.join(missing)} unset."
        )
    logging.info(
        "init_from: %s is a PyTorch file of an EfficientNet; it computes with %s, as the config sets.",
        path,
        ", ".join(f"{name}={value!r}" for name, value in conventions.items()),
    )


def _flags(values: Mapping[str, Any]) -> str:
    """``--config.NAME=VALUE`` for each of ``values``, in ``CONVENTION_FIELDS``' order."""
    return " ".join(f"--config.{name}={values[name]}" for name in CONVENTION_FIELDS)


def merge(fresh: dict, loaded: dict, reinit_head: bool = False, advice: str = "") -> dict:
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
        advice or "Give init_from a checkpoint of this run's model, or set the model it was trained with.",
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
