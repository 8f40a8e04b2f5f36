"""timm's checkpoints: the key layout of every architecture both zoos have, and logits against timm itself.

timm 1.0.31 is installed ``--no-deps`` (README); ``timm_models`` stands empty modules in for torchvision.
"""

import numpy as np
import pytest
from timm_models import import_timm, timm_model

from resnet_jax.convert import TIMM_NAMES, expected_timm_keys, from_timm
from resnet_jax.convert import timm_model as our_timm_model
from resnet_jax.errors import ConfigError, IncompatibleCheckpoint
from resnet_jax.models import create_model
from resnet_jax.models.fields import convention_overrides
from resnet_jax.train import pretrained
from resnet_jax.train.settings import settings_of

torch = pytest.importorskip("torch", reason="the timm tests need torch: pip install -e '.[torch]'")
IMAGE_SIZE = 64


def _flax_shape(shape: tuple[int, ...], flax_rank: int) -> tuple[int, ...]:
    """The shape a torch tensor of ``shape`` takes in Flax: OIHW -> HWIO (a 1x1 conv as a dense kernel)."""
    if len(shape) == 4 and flax_rank == 2:
        return (shape[1], shape[0])
    if len(shape) == 4:
        return (shape[2], shape[3], shape[1], shape[0])
    return tuple(reversed(shape)) if len(shape) == 2 else tuple(shape)


# Every key pattern of TIMM_NAMES, each family at its smallest and largest depth (the other names repeat these
# patterns with other counts; each tested name costs a shape trace, and CI has 15 minutes).
LAYOUT_NAMES = (
    "resnet18",
    "resnet152",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "se_resnet101",
    "resnet50d",
    "res2net101_26w_4s",
    "efficientnet_b0",
    "efficientnet_b7",
    "hrnet_w18_small",
    "hrnet_w18_small_v2",
    "hrnet_w64",
)


def test_the_layout_names_are_listed_models():
    assert set(LAYOUT_NAMES) <= set(TIMM_NAMES)


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_timms_key_layout_of_the_listed_models_is_the_one_we_map(name):
    """timm's state_dict (built on the meta device: no memory, no time) has exactly the keys we fill, each of
    the shape our variable needs: a renamed or reshaped timm module fails here."""
    timm = import_timm()
    with torch.device("meta"):
        state_dict = timm.create_model(TIMM_NAMES[name], pretrained=False, num_classes=7).state_dict()
    theirs = {key: tuple(value.shape) for key, value in state_dict.items() if not key.endswith("num_batches_tracked")}
    ours = expected_timm_keys(name, num_classes=7)
    assert sorted(theirs) == sorted(ours)
    assert {key: _flax_shape(shape, len(ours[key][1])) for key, shape in theirs.items()} == {
        key: shape for key, (_, shape) in ours.items()
    }


# timm's PyTorch-trained EfficientNets and its ports of the paper's TensorFlow weights: the config fields that
# make the run's network compute as each one (a .pth's keys do not tell them apart).
PYTORCH_EFFICIENTNET = {"padding": "symmetric", "bn_epsilon": 1e-5, "bn_momentum": 0.9}
TENSORFLOW_EFFICIENTNET = {"padding": "same", "bn_epsilon": 1e-3, "bn_momentum": 0.99}


def run_loads(path, name: str, num_classes: int, **fields):
    """The run's network for ``--config.model=name --config.init_from=path`` and ``fields``, and the variables the
    run loads into it: the config, ``loop.build_model`` and ``pretrained.load`` as the run calls them."""
    from configs import default
    from resnet_jax import config_schema
    from resnet_jax.train import loop

    config = default.get_config()
    config.update(dict(model=name, num_classes=num_classes, init_from=str(path), **fields))
    config_schema.validate(config)
    settings = settings_of(config).model
    model = loop.build_model(settings)
    return model, pretrained.load(config.init_from, model, config.model, convention_overrides(settings))


@pytest.mark.parametrize(
    "name, timm_name, fields",
    [
        ("resnet18", "resnet18", {}),  # torchvision's layout
        ("se_resnet50", "seresnet50", {}),  # SE as 1x1 convolutions
        ("resnet50d", "resnet50d", {}),  # deep stem, pooled shortcut
        ("res2net50_26w_4s", "res2net50_26w_4s", {}),  # the splits' convs and bns as lists
        ("efficientnet_b0", "efficientnet_b0", PYTORCH_EFFICIENTNET),  # trained in PyTorch
        ("efficientnet_b0", "tf_efficientnet_b0", TENSORFLOW_EFFICIENTNET),  # the paper's TensorFlow weights
        ("hrnet_w18_small", "hrnet_w18_small", {}),
    ],
)
def test_a_run_given_a_timm_file_computes_that_networks_logits_in_eval_mode(name, timm_name, fields, tmp_path):
    """Random weights, BN statistics randomised about a batch's, one model of each family, saved as a .pth and
    loaded the way a run loads ``init_from``: timm's logits within 1e-4."""
    network = timm_model(timm_name, image_size=IMAGE_SIZE)
    path = tmp_path / f"{timm_name}.pth"
    torch.save(network.state_dict(), path)
    images = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = network(images).numpy()
    model, variables = run_loads(path, name, expected.shape[1], **fields)
    logits = np.asarray(model.apply(variables, images.numpy().transpose(0, 2, 3, 1), train=False))
    assert logits.shape == expected.shape
    assert np.abs(logits - expected).max() <= 1e-4


@pytest.mark.parametrize("fields", [{}, {"padding": "symmetric", "bn_epsilon": 1e-5}])
def test_an_efficientnet_file_whose_network_the_config_leaves_open_is_refused_naming_the_fields(fields, tmp_path):
    path = tmp_path / "efficientnet_b0.pth"
    path.write_bytes(b"")  # refused before it is read
    with pytest.raises(ConfigError) as refused:
        run_loads(path, "efficientnet_b0", 1000, **fields)
    message = str(refused.value)
    assert "\n" not in message and "keys do not say which network" in message
    assert "--config.padding=symmetric --config.bn_epsilon=1e-05 --config.bn_momentum=0.9" in message
    assert "tf_efficientnet_b0" in message and "--config.padding=same --config.bn_epsilon=0.001" in message
    assert "leaves bn_momentum unset" in message if fields else "leaves padding, bn_epsilon, bn_momentum" in message


def test_the_config_fields_build_timms_pytorch_efficientnet():
    from configs import default
    from resnet_jax.train import loop

    config = default.get_config()
    config.update(dict(model="efficientnet_b0", num_classes=10, **PYTORCH_EFFICIENTNET))
    assert loop.build_model(settings_of(config).model) == our_timm_model("efficientnet_b0", 10)


def test_the_registry_efficientnet_is_timms_tensorflow_port():
    """The paper's settings (TF 'same' padding, BN eps 1e-3) are the registry's; timm's PyTorch-trained
    efficientnet_b0 is ours with PyTorch's padding and BatchNorm."""
    registry = create_model("efficientnet_b0", num_classes=10)
    assert (registry.padding, registry.bn_epsilon, registry.bn_momentum) == ("same", 1e-3, 0.99)
    assert our_timm_model("efficientnet_b0", 10, "tf_efficientnet_b0") == registry
    pytorch = our_timm_model("efficientnet_b0", 10)
    assert (pytorch.padding, pytorch.bn_epsilon, pytorch.bn_momentum) == ("symmetric", 1e-5, 0.9)


def test_another_architectures_checkpoint_is_refused_naming_the_keys():
    timm = import_timm()
    with torch.device("meta"):
        state_dict = timm.create_model("seresnet50", pretrained=False).state_dict()
    with pytest.raises(IncompatibleCheckpoint, match=r"unexpected keys .*layer1\.0\.se\.fc1\.weight") as caught:
        from_timm({key: torch.zeros(value.shape) for key, value in state_dict.items()}, "resnet50")
    assert "timm resnet50 checkpoint" in str(caught.value)


def test_a_model_timm_does_not_have_is_refused_with_the_list():
    with pytest.raises(
        IncompatibleCheckpoint, match="timm has no counterpart of 'cifar_resnet20'.*seresnet|se_resnet50"
    ):
        from_timm({}, "cifar_resnet20", num_classes=10)
