"""The variants against PyTorch networks written in the tests from their papers: SE-ResNet, ResNet-D,
Res2Net and ImageNet pre-activation nets (parameter counts, eval-mode forward), He et al. 2016b's unit
orders, gates, scalings and shortcuts, stochastic depth and the dropout shortcut."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from units import basic_unit

from resnet_jax.convert import from_state_dict, from_torchvision, torch_keys
from resnet_jax.models import abstract_variables, create_model, profile_model
from resnet_jax.models.blocks import ResidualUnit

torch = pytest.importorskip("torch", reason="parity tests need torch: pip install -e '.[torch]'")
import torch_resnet  # noqa: E402  (needs torch)
import torch_variants  # noqa: E402  (needs torch)

# The papers' sizes in millions, 1000 classes at 224 (Hu et al. Table 1 of the SENet paper; He et al.
# 2019 Table 5 footnote / timm; Gao et al. 2019 Table 1).
PUBLISHED_MILLIONS = {
    "se_resnet50": 28.09,
    "se_resnet101": 49.33,
    "resnet50d": 25.58,
    "res2net50_26w_4s": 25.70,
    "res2net101_26w_4s": 45.21,
}


@pytest.mark.parametrize("name", sorted(torch_variants.IMAGENET_VARIANTS))
def test_parameter_count_equals_the_pytorch_reference_and_the_published_size(name):
    reference = sum(p.numel() for p in torch_variants.build(name).parameters())
    ours = profile_model(create_model(name, num_classes=1000), 224)
    assert ours.params == reference
    if name in PUBLISHED_MILLIONS:
        assert round(ours.params / 1e6, 2) == PUBLISHED_MILLIONS[name]


def _macs(name: str) -> int:
    return profile_model(create_model(name, num_classes=1000), 224).macs


def test_macs_of_the_variants_against_hand_counts():
    """Per image at 224, the convention of the model table (convolutions and dense layers)."""
    # SE: two FCs of C x C/16 in each of the 3, 4, 6, 3 blocks of widths 256, 512, 1024, 2048.
    se = sum(n * 2 * c * (c // 16) for n, c in ((3, 256), (4, 512), (6, 1024), (3, 2048)))
    assert _macs("se_resnet50") - _macs("resnet50") == se == 2_514_944
    # ResNet-C: 3x3 convs 3->32 (stride 2), 32->32, 32->64 at 112x112 instead of one 7x7 3->64; ResNet-D's
    # projection runs at stride 1 on the pooled map, so it costs what the strided one did.
    deep_stem = 112 * 112 * 9 * (3 * 32 + 32 * 32 + 32 * 64)
    assert _macs("resnet50d") - _macs("resnet50") == deep_stem - 112 * 112 * 49 * 3 * 64
    assert _macs("preact_resnet18") == _macs("resnet18")  # the same convolutions, BN moved


def _eval_reference(build, seed: int = 0):
    """The reference network ``build()`` makes, built under the seed, in eval mode, random BN statistics."""
    return torch_resnet.seeded(lambda: build().eval(), seed)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("se_resnet50", marks=pytest.mark.slow),
        pytest.param("resnet50d", marks=pytest.mark.slow),
        pytest.param("res2net50_26w_4s", marks=pytest.mark.slow),
        "preact_resnet18",
        pytest.param("preact_resnet50", marks=pytest.mark.slow),
    ],
)
def test_eval_forward_matches_the_pytorch_reference(name):
    """Random weights and BN statistics, eval mode, 64x64 inputs: logits within 1e-4 in float32."""
    network, generator = _eval_reference(lambda: torch_variants.build(name, num_classes=10))
    images = torch.randn(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        expected = network(images).numpy()
    variables = from_torchvision(network.state_dict(), name)
    got = create_model(name, num_classes=10).apply(variables, images.numpy().transpose(0, 2, 3, 1))
    assert np.abs(np.asarray(got) - expected).max() <= 1e-4


UNIT_CASES = {
    # He et al. 2016b Table 2's orders (Fig. 4 a-e), and Table 1's shortcuts (Fig. 2), on a CIFAR unit.
    "original": dict(order="post"),
    "bn_after_addition": dict(order="bn_after_addition"),
    "relu_before_addition": dict(order="relu_before_addition"),
    "relu_preactivation": dict(order="relu_preactivation"),
    "full_preactivation": dict(order="full_preactivation"),
    "constant_scaling": dict(order="post", shortcut_scale=0.5, branch_scale=0.5),
    "exclusive_gating": dict(order="post", gate="exclusive", gate_bias=-2.0),
    "shortcut_only_gating": dict(order="post", gate="shortcut_only", gate_bias=-2.0),
    "conv_shortcut": dict(order="post", shortcut="C"),
}


def _unit(case: dict, stride: int, out_width: int) -> ResidualUnit:
    """The unit of a ``UNIT_CASES`` entry."""
    return basic_unit(
        out_width,
        stride,
        shortcut=case.get("shortcut", "A"),
        activation_order=case["order"],
        shortcut_scale=case.get("shortcut_scale", 1.0),
        branch_scale=case.get("branch_scale", 1.0),
        gate=case.get("gate", ""),
        gate_bias_init=case.get("gate_bias", 0.0),
    )


@pytest.mark.parametrize("stride, in_width, out_width", [(1, 8, 8), (2, 8, 16)])
@pytest.mark.parametrize("case", sorted(UNIT_CASES))
def test_he2016b_units_match_a_pytorch_unit_from_the_paper(case, stride, in_width, out_width):
    """Eval and training mode (batch statistics), random weights, option A or 1x1 shortcuts."""
    settings = UNIT_CASES[case]
    network, generator = _eval_reference(
        lambda: torch_variants.AblationUnit(
            in_width,
            out_width,
            stride,
            settings["order"],
            gate=settings.get("gate", ""),
            shortcut=settings.get("shortcut", "A"),
            shortcut_scale=settings.get("shortcut_scale", 1.0),
            branch_scale=settings.get("branch_scale", 1.0),
        )
    )
    if settings.get("gate"):
        torch.nn.init.constant_(network.gate.bias, settings["gate_bias"])
    x = torch.randn(4, in_width, 8, 8, generator=generator)
    unit = _unit(settings, stride, out_width)
    shapes = jax.eval_shape(lambda: unit.init(jax.random.key(0), jnp.zeros((4, 8, 8, in_width)), train=False))
    variables = from_state_dict(network.state_dict(), torch_keys(shapes), case)
    nhwc = x.numpy().transpose(0, 2, 3, 1)
    with torch.no_grad():
        expected_eval = network(x).numpy().transpose(0, 2, 3, 1)
        network.train()
        expected_train = network(x).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(np.asarray(unit.apply(variables, nhwc, train=False)), expected_eval, atol=1e-4)
    trained, _ = unit.apply(variables, nhwc, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(np.asarray(trained), expected_train, atol=1e-4)


def test_the_gate_starts_at_its_bias():
    """He et al. 2016b initialise b_g (their best exclusive gate: -6, so g starts near 0.0025)."""
    unit = _unit(dict(order="post", gate="exclusive", gate_bias=-6.0), 2, 16)
    variables = unit.init(jax.random.key(0), jnp.zeros((2, 8, 8, 8)), train=False)
    np.testing.assert_array_equal(variables["params"]["gate"]["bias"], np.full(16, -6.0, np.float32))
    assert variables["params"]["gate"]["kernel"].shape == (1, 1, 8, 16)  # 1x1, from the unit's input


def test_stochastic_depth_drops_the_whole_branch_per_batch_and_scales_it_at_eval():
    """Huang et al. 2016: in training the branch is kept with probability p for the whole mini-batch (a
    dropped one does not touch its BN statistics); at eval it is multiplied by p."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 6, 6, 8), dtype=np.float32))
    survival = 0.3
    unit = basic_unit(survival_probability=survival)
    variables = unit.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x, train=False)
    kept = np.asarray(basic_unit().apply(variables, x, train=True, mutable=["batch_stats"])[0])
    dropped = np.maximum(np.asarray(x), 0)
    outcomes = []
    for seed in range(200):
        out, updated = unit.apply(
            variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(seed)}
        )
        out = np.asarray(out)
        is_kept, is_dropped = np.allclose(out, kept, atol=1e-6), np.allclose(out, dropped, atol=1e-6)
        assert is_kept != is_dropped  # all of the batch one way or the other
        outcomes.append(is_kept)
        # A dropped block is as if not run (their code skips it): its BN running statistics stay put.
        stats_moved = [
            not np.array_equal(before, after)
            for before, after in zip(
                jax.tree_util.tree_leaves(variables["batch_stats"]),
                jax.tree_util.tree_leaves(updated["batch_stats"]),
                strict=True,
            )
        ]
        assert all(stats_moved) if is_kept else not any(stats_moved)
    assert 40 <= sum(outcomes) <= 80  # Binomial(200, 0.3): mean 60, sd 6.5
    branch_times_p = _unit(dict(order="post", branch_scale=survival), 1, 8).apply(variables, x, train=False)
    np.testing.assert_allclose(np.asarray(unit.apply(variables, x, train=False)), np.asarray(branch_times_p), atol=1e-6)


def test_a_dropped_pre_activation_unit_still_updates_the_bn_its_projection_shortcut_shares():
    """bn1 of a full pre-activation unit feeds the projection shortcut, which runs every step; the branch's
    other BN is left alone when the branch is dropped."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 6, 6, 8), dtype=np.float32))
    unit = basic_unit(16, 2, shortcut="B", activation_order="full_preactivation", survival_probability=0.5)
    variables = unit.init(jax.random.key(0), x, train=False)
    moved_by_draw = set()
    for seed in range(12):
        rngs = {"dropout": jax.random.key(seed)}
        _, updated = unit.apply(variables, x, train=True, mutable=["batch_stats"], rngs=rngs)
        moved = {
            name: not np.array_equal(variables["batch_stats"][name]["mean"], updated["batch_stats"][name]["mean"])
            for name in ("bn1", "bn2")
        }
        assert moved["bn1"]
        moved_by_draw.add(moved["bn2"])
    assert moved_by_draw == {True, False}  # 12 draws at p = 0.5 kept and dropped the branch


def test_survival_probabilities_decay_linearly_to_p_l():
    """p_l = 1 - l / L (1 - p_L) for block l = 1..L; captured from the blocks of a 3-block net."""
    model = create_model("cifar_resnet20", num_classes=10, stage_sizes=(1, 1, 1), stochastic_depth=0.5)
    found = {}

    def record(next_fun, args, kwargs, context):
        module = context.module
        if isinstance(module, ResidualUnit) and context.method_name == "__call__":
            found[module.name] = module.survival_probability
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        abstract_variables(model, 8)
    assert found == pytest.approx({"layer1_0": 5 / 6, "layer2_0": 4 / 6, "layer3_0": 0.5})


def test_the_dropout_shortcut_keeps_elements_unscaled_and_scales_by_one_minus_p_at_eval():
    """He et al. 2016b's dropout shortcut, expected scale 1 - p: with the branch zeroed, the training
    output is relu(mask * x) with mask in {0, 1}; at eval it is relu((1 - p) x)."""
    # The branch starts at zero (zero_init_residual): the output is the shortcut's alone.
    unit = basic_unit(zero_init_residual=True, shortcut_dropout=0.5)
    x = jnp.abs(jnp.asarray(np.random.default_rng(0).standard_normal((8, 6, 6, 8), dtype=np.float32))) + 0.1
    variables = unit.init(jax.random.key(0), x, train=False)
    np.testing.assert_allclose(np.asarray(unit.apply(variables, x, train=False)), 0.5 * np.asarray(x), rtol=1e-6)
    out, _ = unit.apply(variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)})
    out = np.asarray(out)
    kept = np.isclose(out, np.asarray(x), rtol=1e-6)
    assert np.all(kept | (out == 0))  # each element kept as it is, or dropped
    assert 0.45 < kept.mean() < 0.55


def test_config_fields_change_the_registered_model_only_when_set():
    """Each variant field's default keeps the model's own value (se_resnet50 keeps its SE); a set field wins."""
    from configs import default
    from resnet_jax.models.fields import model_overrides
    from resnet_jax.train import loop
    from resnet_jax.train.settings import settings_of

    config = default.get_config()
    config.model, config.num_classes = "se_resnet50", 1000
    assert model_overrides(settings_of(config).model) == {}
    model = loop.build_model(settings_of(config).model)
    assert (model.se_ratio, model.shortcut, model.activation_order, model.gate) == (1 / 16, "B", "post", "")
    config.update(dict(shortcut="D", gate="exclusive", gate_bias_init=-6.0, stochastic_depth=0.5))
    model = loop.build_model(settings_of(config).model)
    assert (model.se_ratio, model.shortcut, model.gate, model.gate_bias_init) == (1 / 16, "D", "exclusive", -6.0)
    assert model.stochastic_depth == 0.5


def test_the_earlier_preactivation_flag_builds_the_full_preactivation_net():
    """``preactivation=True`` (the spelling before activation_order) still builds the same network."""
    images = jax.random.normal(jax.random.PRNGKey(1), (2, 16, 16, 3))
    outputs = []
    for fields in ({"preactivation": True}, {"activation_order": "full_preactivation"}):
        model = create_model("cifar_resnet20", num_classes=10, stage_sizes=(1, 1, 1), **fields)
        variables = model.init(jax.random.PRNGKey(0), images)
        outputs.append(model.apply(variables, images))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    plain = create_model("cifar_resnet20", num_classes=10, stage_sizes=(1, 1, 1))
    assert not np.allclose(outputs[0], plain.apply(plain.init(jax.random.PRNGKey(0), images), images))
    wrn = {"stage_sizes": (1, 1, 1)}  # registered with activation_order='full_preactivation'
    assert create_model("wrn28_10", num_classes=10, preactivation=True, **wrn).unit_order == "full_preactivation"
    assert create_model("wrn28_10", num_classes=10, preactivation=False, **wrn).unit_order == "post"
    with pytest.raises(ValueError, match="set activation_order alone"):
        create_model("cifar_resnet20", num_classes=10, preactivation=True, activation_order="bn_after_addition")


ACTIVATED, SQUEEZED = (2, 4, 4, 8), (2, 1, 1, 2)


@pytest.mark.parametrize(
    "order, places",
    [("post", [ACTIVATED, SQUEEZED, ACTIVATED]), ("full_preactivation", [ACTIVATED, ACTIVATED, SQUEEZED])],
)
def test_the_activation_handed_in_with_the_layers_acts_at_each_place_of_the_order_and_in_the_se(order, places):
    """He et al. 2016b Fig. 4: (a) ReLU after bn1, then the SE's (Hu et al.: between its layers), then after the
    addition; (e) BN-ReLU before each convolution, then the SE's. Each is the one ``Layers`` carries."""
    from resnet_jax.models.attention import SqueezeExcitation
    from resnet_jax.models.efficientnet import MBConv
    from resnet_jax.models.layers import Layers

    calls = []

    def recorded(x):
        calls.append(x.shape)
        return jnp.tanh(x)

    layers = Layers(act=recorded)
    unit = basic_unit(8, activation_order=order, layers=layers, se=SqueezeExcitation(2, layers, parent=None))
    unit.init(jax.random.key(0), jnp.ones((2, 4, 4, 8)), train=False)
    assert calls == places
    calls.clear()  # EfficientNet's MBConv: after the expansion's BN, after the depthwise BN, inside the SE
    MBConv(8, 4, 3, 1, 1.0, False, layers).init(jax.random.key(0), jnp.ones((2, 4, 4, 8)), train=False)
    assert calls == [(2, 4, 4, 32), (2, 4, 4, 32), (2, 1, 1, 2)]
