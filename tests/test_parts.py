"""The model owns the names of its parts; freezing, multipliers, gradient-norm labels, re-initialising the
head and the torchvision converter all agree with it."""

import jax
import numpy as np
import optax
import pytest

from resnet_jax.convert import torch_key
from resnet_jax.models import ResNet, abstract_variables, create_model, get_spec, list_models, parts
from resnet_jax.train import optim, pretrained
from resnet_jax.train.step import gradient_norms

# Written from the papers' layouts, not read from the code: top-level modules and the part of each.
RESNET20_PARTS = {"conv1": "stem", "bn1": "stem", "fc": "head"} | {
    f"layer{stage}_{block}": f"layer{stage}" for stage in (1, 2, 3) for block in range(3)
}
WRN16_PARTS = {"conv1": "stem", "bn_final": "layer3", "fc": "head"} | {
    f"layer{stage}_{block}": f"layer{stage}" for stage in (1, 2, 3) for block in range(2)
}


def params_of(name: str, **overrides) -> dict:
    model = create_model(name, num_classes=10, **overrides)
    return abstract_variables(model, 32)["params"]


@pytest.mark.parametrize("name, expected", [("cifar_resnet20", RESNET20_PARTS), ("wrn16_8", WRN16_PARTS)])
def test_every_module_belongs_to_the_part_the_paper_layout_says(name, expected):
    params = params_of(name)
    assert parts.part_of_modules(params) == expected
    assert parts.part_names(params) == ["stem", "layer1", "layer2", "layer3", "head"]


@pytest.mark.parametrize("name", [name for name in list_models() if get_spec(name).module is ResNet])
def test_every_registered_model_has_a_stem_stages_and_a_head(name):
    num_stages = len(get_spec(name).kwargs["stage_sizes"])
    params = params_of(name, stage_sizes=(1,) * num_stages)  # one block per stage: shapes only, quickly
    assert parts.part_names(params) == ["stem", *[f"layer{i}" for i in range(1, num_stages + 1)], "head"]


def changed_by(tx: optax.GradientTransformation, params: dict) -> set[str]:
    """The top-level modules whose update is not zero."""
    params = jax.tree_util.tree_map(lambda leaf: np.ones(leaf.shape, np.float32), params)
    updates, _ = tx.update(jax.tree_util.tree_map(np.ones_like, params), tx.init(params), params)
    return {module for module, tree in updates.items() if any(np.any(leaf) for leaf in jax.tree_util.tree_leaves(tree))}


def test_freeze_head_and_reinit_head_act_on_the_same_parameters():
    params = params_of("wrn16_8")  # pre-activation: its final BN closes the last stage, it is not the head
    frozen = set(params) - changed_by(optim.with_part_control(optax.sgd(1.0), params, freeze=["head"]), params)
    fresh = {"params": jax.tree_util.tree_map(lambda leaf: np.zeros(leaf.shape, np.float32), params)}
    loaded = {"params": jax.tree_util.tree_map(lambda leaf: np.ones(leaf.shape, np.float32), params)}
    merged = pretrained.merge(fresh, loaded, reinit_head=True)["params"]
    reinitialised = {module for module, tree in merged.items() if not np.any(jax.tree_util.tree_leaves(tree)[0])}
    assert frozen == reinitialised == {"fc"}


def test_gradient_norm_labels_are_the_parts():
    params = params_of("wrn16_8")
    grads = jax.tree_util.tree_map(lambda leaf: np.ones(leaf.shape, np.float32), params)
    labels = {key.removeprefix("grad_norm/") for key in gradient_norms(grads) if key != "grad_norm"}
    assert labels == set(parts.part_names(params))


def test_block_names_round_trip_and_convert_to_torchvision_keys():
    assert parts.block(1, 0) == "layer2_0"
    assert parts.block_position("layer2_0") == ("layer2", 0)
    assert parts.block_position("layer12_31") == ("layer12", 31)
    assert parts.block_position("fc") is None
    assert torch_key(("batch_stats", "layer2_0", "downsample_bn", "var")) == "layer2.0.downsample.1.running_var"
    assert torch_key(("params", "bn_final", "scale")) == "bn_final.weight"


def test_an_unknown_module_name_is_an_error():
    with pytest.raises(ValueError, match="'decoder' is not a module name"):
        parts.part_of_modules(["conv1", "decoder"])


@pytest.mark.parametrize(
    "name, stages, closing",
    [("efficientnet_b0", 7, {"conv_head", "bn2"}), ("hrnet_w18_small", 4, {"final_layer_0", "incre_modules_3_0"})],
)
def test_efficientnet_and_hrnet_parts_are_the_stem_each_stage_and_the_classifier(name, stages, closing):
    """Stage N is layerN in every family; the head is the classifier alone, the convolutions of the network's
    own head close its last stage."""
    params = abstract_variables(create_model(name, num_classes=10), 64)["params"]
    part_of = parts.part_of_modules(params)
    assert parts.part_names(params) == ["stem", *[f"layer{i}" for i in range(1, stages + 1)], "head"]
    assert {module for module, part in part_of.items() if part == "head"} == {"classifier"}
    assert all(part_of[module] == f"layer{stages}" for module in closing)
