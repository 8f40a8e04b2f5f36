"""An architecture option added from outside the package (tests/toy_option.py, LayerScale) is one declaration:
it becomes a config field, every residual unit applies it, and the family scoping and checks hold for it."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from resnet_jax.errors import ConfigError
from resnet_jax.models import create_model

IMAGES = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))


def _init(model):
    return model.init(jax.random.key(0), IMAGES, train=False)


def _logits(model, variables):
    return model.apply(variables, IMAGES, train=False)


def test_the_added_option_is_a_parameter_of_every_unit_and_gain_one_half_is_branch_scale_one_half(toy_extensions):
    """LayerScale at gain g multiplies each branch by g before the branch scaling, so g = 0.5 computes what the
    package's own branch_scale=0.5 does (He et al. 2016b), and g = 1 what the plain net does."""
    *_, toy_option = toy_extensions
    plain = create_model("cifar_resnet20", num_classes=10)
    scaled = create_model("cifar_resnet20", num_classes=10, **{toy_option.NAME: 0.5})
    assert scaled.added_options == ((toy_option.NAME, 0.5),)
    variables = _init(scaled)
    flat = traverse_util.flatten_dict(variables["params"], sep="/")
    gains = {path: value for path, value in flat.items() if path.endswith(toy_option.NAME)}
    assert sorted(gains) == [f"layer{stage}_{index}/{toy_option.NAME}" for stage in (1, 2, 3) for index in range(3)]
    assert all(np.array_equal(gain, np.full(gain.shape, 0.5)) for gain in gains.values())
    without_gains = {
        "params": traverse_util.unflatten_dict({p: v for p, v in flat.items() if p not in gains}, sep="/"),
        "batch_stats": variables["batch_stats"],
    }
    assert jax.tree.structure(without_gains) == jax.tree.structure(_init(plain))  # nothing else moved
    halved = create_model("cifar_resnet20", num_classes=10, branch_scale=0.5)
    np.testing.assert_allclose(_logits(scaled, variables), _logits(halved, without_gains), rtol=1e-5, atol=1e-5)
    ones = jax.tree.map(lambda v: jnp.ones_like(v) if v.shape == (v.shape[0],) else v, gains)
    unit_gains = traverse_util.unflatten_dict({**flat, **ones}, sep="/")
    np.testing.assert_allclose(
        _logits(scaled, {"params": unit_gains, "batch_stats": variables["batch_stats"]}),
        _logits(plain, without_gains),
        rtol=1e-5,
        atol=1e-5,
    )


def test_the_added_option_is_a_config_field_checked_scoped_to_its_family_and_its_name_is_not_reused(toy_extensions):
    *_, toy_option = toy_extensions
    from resnet_jax import config_schema
    from resnet_jax.models.options import BY_NAME, register_option

    config = config_schema.default_config()
    assert config[toy_option.NAME] == 0.0
    assert f"{toy_option.NAME} = 0.0: LayerScale" in config_schema.help_text()
    config[toy_option.NAME] = -1.0
    with pytest.raises(ConfigError, match=rf"{toy_option.NAME} must be >= 0"):
        config_schema.validate(config)
    config.update({toy_option.NAME: 0.1, "model": "efficientnet_b0"})
    with pytest.raises(ConfigError, match=rf"{toy_option.NAME} is an option of the ResNet family.*efficientnet"):
        config_schema.validate(config)
    with pytest.raises(ValueError, match="'toy_layer_scale' is taken"):
        register_option(BY_NAME[toy_option.NAME])
    register_option(dataclasses.replace(BY_NAME[toy_option.NAME], name="block"))
    with pytest.raises(ValueError, match=r"\['block'\] added with register_option have a ResNet field's name"):
        create_model("cifar_resnet20", num_classes=10)
