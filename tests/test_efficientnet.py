"""EfficientNet-B0..B7 against independent sources: timm's efficientnet_b*, the PyTorch reference in
tests/torch_efficientnet.py, Tan & Le 2019 (Tables 1 and 2) and per-layer hand counts."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import traverse_util
from timm_models import import_timm, timm_model

from resnet_jax.convert import from_state_dict, indexed_torch_key
from resnet_jax.models import abstract_variables, profile_model
from resnet_jax.models.efficientnet import SPECS, EfficientNet, Layers, MBConv

NAMES = [f"efficientnet_b{i}" for i in range(8)]
# Tan & Le 2019 Table 2, parameters in millions as printed, and the decimals they are printed with.
PAPER_PARAMS_MILLIONS = {
    "efficientnet_b0": (5.3, 1),
    "efficientnet_b1": (7.8, 1),
    "efficientnet_b2": (9.2, 1),
    "efficientnet_b3": (12, 0),
    "efficientnet_b4": (19, 0),
    "efficientnet_b5": (30, 0),
    "efficientnet_b6": (43, 0),
    "efficientnet_b7": (66, 0),
}
# Table 2 prints B2 as 9.2M; the released B2 (TF reference, timm, keras) has 9.11M trainable parameters.
PAPER_OFF_BY_ROUNDING = {"efficientnet_b2"}
PAPER_B0_FLOPS = 0.39e9  # Table 2: "FLOPs" there are multiply-adds
# (expand ratio, kernel, stride, channels, repeats), Tan & Le 2019 Table 1: the hand counts' own copy.
TABLE_1 = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
           (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]  # fmt: skip
# XLA:CPU compiles B0's gradient in a third of the time with these; the values are unchanged.
QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
PARITY_SIZE = 72  # 72 -> 36 -> 18 -> 9 -> 5 -> 3: TF SAME pads both asymmetrically (even) and symmetrically (odd)


def count(tree) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


def build(name: str, num_classes: int = 1000, **overrides) -> EfficientNet:
    spec = SPECS[name]
    return spec.module(num_classes=num_classes, **{**spec.kwargs, **overrides})


def random_variables(model, size: int, channels: int = 3, seed: int = 0) -> dict:
    """Variables for ``model`` drawn with numpy from their shapes (``model.init`` takes seconds to compile):
    He-scaled kernels, BatchNorm scales and variances in [0.5, 1.5], biases and means about 0."""
    rng = np.random.default_rng(seed)

    def draw(leaf: str, shape: tuple[int, ...]) -> np.ndarray:
        if leaf == "kernel":
            return rng.normal(0.0, math.sqrt(2 / math.prod(shape[:-1])), shape)
        if leaf in ("scale", "var"):
            return rng.uniform(0.5, 1.5, shape)
        return rng.normal(0.0, 0.1, shape)

    shapes = traverse_util.flatten_dict(abstract_variables(model, size, channels))
    return traverse_util.unflatten_dict(
        {path: jnp.asarray(draw(path[-1], leaf.shape), jnp.float32) for path, leaf in shapes.items()}
    )


def randomise_batchnorm(model) -> None:
    """Random running statistics and affine parameters on every torch BatchNorm, as timm_models does."""
    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)


def hand_count_b0_macs(size: int, num_classes: int) -> int:
    """Conv and dense multiply-accumulates of B0, layer by layer from Table 1 (TF SAME: out = ceil(in / stride))."""
    size = math.ceil(size / 2)
    macs, cin = size * size * 3 * 3 * 3 * 32, 32
    for expand, kernel, stride, cout, repeats in TABLE_1:
        for unit in range(repeats):
            mid = cin * expand
            macs += size * size * cin * mid if expand > 1 else 0  # 1x1 expansion at the input resolution
            size = math.ceil(size / (stride if unit == 0 else 1))
            macs += size * size * kernel * kernel * mid  # depthwise: one input channel per output channel
            macs += 2 * mid * (cin // 4)  # SE's two 1x1 convs on the pooled 1x1 map
            macs += size * size * mid * cout  # 1x1 projection
            cin = cout
    return macs + size * size * cin * 1280 + 1280 * num_classes


def expected_keys(model: EfficientNet) -> dict:
    flat = traverse_util.flatten_dict(abstract_variables(model, PARITY_SIZE))
    return {indexed_torch_key(path): (path, tuple(leaf.shape)) for path, leaf in flat.items()}


def assert_same_logits(model: EfficientNet, torch_model, name: str) -> None:
    """The Flax model with ``torch_model``'s weights gives its eval-mode logits within 1e-4."""
    import torch

    variables = from_state_dict(torch_model.state_dict(), expected_keys(model), name)
    images = np.random.default_rng(0).normal(size=(2, PARITY_SIZE, PARITY_SIZE, 3)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
    logits = np.asarray(jax.jit(model.apply, compiler_options=QUICK_COMPILE)(variables, images))
    assert np.abs(expected).max() > 0.1  # the comparison is not between near-zero outputs
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_the_reference_timm_and_table_2(name):
    pytest.importorskip("torch")
    from torch_efficientnet import torch_efficientnet

    flax_params = count(abstract_variables(build(name), 64)["params"])
    reference = sum(p.numel() for p in torch_efficientnet(name).parameters())
    assert flax_params == reference
    timm = import_timm()
    assert flax_params == sum(p.numel() for p in timm.create_model(name, pretrained=False).parameters())
    paper, decimals = PAPER_PARAMS_MILLIONS[name]
    if name in PAPER_OFF_BY_ROUNDING:
        assert flax_params / 1e6 == pytest.approx(paper, rel=0.01)
    else:
        assert round(flax_params / 1e6, decimals) == paper


def test_b0_has_timms_5288548_parameters_without_torch():
    assert count(abstract_variables(build("efficientnet_b0"), 64)["params"]) == 5_288_548  # timm, 1000 classes


def test_b0_macs_match_the_hand_count_and_table_2():
    macs = profile_model(build("efficientnet_b0"), 224).macs
    assert macs == hand_count_b0_macs(224, 1000)
    assert macs == pytest.approx(PAPER_B0_FLOPS, rel=0.02)


def test_b0_features_follow_table_1():
    features = jax.eval_shape(
        lambda x: build("efficientnet_b0").init_with_output(jax.random.key(0), x, return_features=True)[0],
        jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32),
    )
    # Table 1: resolution and channels after the stem and after each stage.
    expected = {"stem": (112, 32), "layer1": (112, 16), "layer2": (56, 24), "layer3": (28, 40), "layer4": (14, 80),
                "layer5": (14, 112), "layer6": (7, 192), "layer7": (7, 320)}  # fmt: skip
    assert set(features) == {*expected, "pooled", "logits"}
    for key, (size, channels) in expected.items():
        assert features[key].shape == (1, size, size, channels), key
    assert features["pooled"].shape == (1, 1280) and features["logits"].shape == (1, 1000)


def test_bfloat16_compute_keeps_parameters_statistics_and_logits_in_float32():
    model = build("efficientnet_b0", num_classes=10, dtype="bfloat16")
    features, variables = jax.eval_shape(
        lambda x: model.init_with_output(jax.random.key(0), x, return_features=True),
        jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32),
    )
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(variables)} == {jnp.dtype(jnp.float32)}
    assert features["layer4"].dtype == jnp.bfloat16 and features["logits"].dtype == jnp.float32


def test_tf_same_padding_matches_the_pytorch_reference():
    torch = pytest.importorskip("torch")
    from torch_efficientnet import torch_efficientnet

    torch.manual_seed(0)
    reference = torch_efficientnet("efficientnet_b0", tf_same=True, bn_eps=1e-3)
    randomise_batchnorm(reference)
    assert_same_logits(build("efficientnet_b0"), reference.eval(), "efficientnet_b0")


def test_symmetric_padding_matches_timm_efficientnet_b0():
    model = build("efficientnet_b0", padding="symmetric", bn_epsilon=1e-5, bn_momentum=0.9)
    assert_same_logits(model, timm_model("efficientnet_b0"), "efficientnet_b0")


def test_every_parameter_gets_a_nonzero_gradient_in_a_train_step():
    model = build("efficientnet_b0", num_classes=5)
    images = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
    labels = jnp.arange(4) % 5
    variables = random_variables(model, 32)

    def loss(params):
        logits, _ = model.apply(
            {**variables, "params": params},
            images,
            train=True,
            rngs={"dropout": jax.random.key(2)},
            mutable=["batch_stats"],
        )
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))

    grads = jax.jit(jax.grad(loss), compiler_options=QUICK_COMPILE)(variables["params"])
    flat = traverse_util.flatten_dict(grads)
    assert len(flat) == len(traverse_util.flatten_dict(variables["params"]))
    zero = [".".join(path) for path, grad in flat.items() if not np.any(np.asarray(grad))]
    assert not zero, f"no gradient reaches {zero}"


def unit_survival(model: EfficientNet, size: int = 64) -> dict[str, float]:
    """Each MBConv's survival probability, read from the modules a shape trace builds."""
    survival = {}

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, MBConv):
            survival[context.module.name] = context.module.survival_probability
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        abstract_variables(model, size)
    return survival


def test_survival_probability_falls_linearly_to_0_8():
    survival = list(unit_survival(build("efficientnet_b0")).values())
    assert len(survival) == sum(repeats for *_, repeats in TABLE_1) == 16
    # The reference implementation's drop connect: drop rate 0.2 * index / units for index 0 ... 15.
    np.testing.assert_allclose(survival, [1 - 0.2 * index / 16 for index in range(16)], rtol=0, atol=1e-12)
    assert 0.8 < survival[-1] <= 0.82
    assert list(unit_survival(build("efficientnet_b0", survival_probability=1.0)).values()) == [1.0] * 16


def test_survival_probability_matches_timms_drop_path():
    timm = import_timm()
    timm_b3 = timm.create_model("efficientnet_b3", pretrained=False, drop_path_rate=0.2)
    drop = [getattr(unit.drop_path, "drop_prob", 0.0) for stage in timm_b3.blocks for unit in stage]
    survival = unit_survival(build("efficientnet_b3"))
    assert list(survival.values()) == pytest.approx([1 - rate for rate in drop], abs=1e-12)


def test_drop_connect_drops_whole_examples_and_rescales_the_kept_ones():
    layers = Layers("same", bn_momentum=0.99, bn_epsilon=1e-3, bn_group_size=0, dtype=jnp.dtype(jnp.float32))

    def unit(survival: float) -> MBConv:
        fields = dict(expand_ratio=6, kernel_size=3, stride=1, zero_init_residual=False, layers=layers)
        return MBConv(out_channels=16, survival_probability=survival, **fields)

    def run(survival: float, train: bool) -> np.ndarray:
        apply = functools.partial(unit(survival).apply, train=train, mutable=["batch_stats"])
        outputs, _ = jax.jit(apply, compiler_options=QUICK_COMPILE)(variables, x, rngs={"dropout": jax.random.key(2)})
        return np.asarray(outputs)

    x = jax.random.normal(jax.random.key(0), (64, 4, 4, 16))
    variables = random_variables(unit(1.0), 4, channels=16)
    branch, kept_branch = run(1.0, train=True) - x, run(0.5, train=True) - x
    is_dropped = np.all(kept_branch == 0, axis=(1, 2, 3))
    assert 16 <= is_dropped.sum() <= 48  # about half of 64 examples
    np.testing.assert_allclose(kept_branch[~is_dropped], branch[~is_dropped] / 0.5, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(run(0.5, train=False), run(1.0, train=False))  # the identity at eval


@pytest.fixture(scope="module")
def small():
    """A narrow, shallow EfficientNet (13 units, 8 with a skip) and its variables, for the train/eval tests."""
    model = EfficientNet(num_classes=7, width_coefficient=0.5, depth_coefficient=0.6, head_dropout=0.5)
    images = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))
    return model, random_variables(model, 32), images


def forward(model: EfficientNet, train: bool):
    """``model``'s features and logits as a jitted (variables, images, dropout key) -> dict; eval needs no key."""

    def run(variables, images, key):
        rngs = {"dropout": key} if train else {}
        return model.apply(variables, images, train, return_features=True, rngs=rngs, mutable=["batch_stats"])[0]

    return jax.jit(run, compiler_options=QUICK_COMPILE)


KEYS = jax.random.key(3), jax.random.key(4)


def test_eval_is_deterministic_and_stochastic_depth_only_trains(small):
    model, variables, images = small
    model = model.clone(head_dropout=0.0)  # stochastic depth the only randomness
    at_eval = forward(model, train=False)
    np.testing.assert_array_equal(
        at_eval(variables, images, None)["logits"], at_eval(variables, images, None)["logits"]
    )
    in_training = forward(model, train=True)
    first, second = (np.asarray(in_training(variables, images, key)["logits"]) for key in KEYS)
    assert np.abs(first - second).max() > 1e-4
    without_depth = forward(model.clone(survival_probability=1.0), train=True)
    np.testing.assert_array_equal(*(without_depth(variables, images, key)["logits"] for key in KEYS))


def test_the_two_paddings_differ(small):
    """So that each parity test could fail if the padding were the other one."""
    model, variables, images = small
    same = forward(model, train=False)(variables, images, None)["logits"]
    symmetric = forward(model.clone(padding="symmetric"), train=False)(variables, images, None)["logits"]
    assert np.abs(np.asarray(same - symmetric)).max() > 1e-3


def test_dropout_before_the_classifier_only_in_training(small):
    model, variables, images = small
    model = model.clone(survival_probability=1.0)  # dropout the only randomness
    classifier = variables["params"]["classifier"]

    def gap_to_undropped(outputs) -> float:
        undropped = outputs["pooled"] @ classifier["kernel"] + classifier["bias"]
        return float(np.abs(np.asarray(outputs["logits"] - undropped)).max())

    in_training = forward(model, train=True)
    first, second = (in_training(variables, images, key) for key in KEYS)
    np.testing.assert_array_equal(first["pooled"], second["pooled"])  # nothing stochastic before the pooling
    assert gap_to_undropped(first) > 1e-3 and np.abs(np.asarray(first["logits"] - second["logits"])).max() > 1e-3
    assert gap_to_undropped(forward(model, train=False)(variables, images, None)) < 1e-5
    assert gap_to_undropped(forward(model.clone(head_dropout=0.0), train=True)(variables, images, KEYS[0])) < 1e-5


def initial_params(model: EfficientNet, wanted) -> dict[str, np.ndarray]:
    """The initial values of the params whose path ``wanted`` accepts; XLA drops the others' initialisers, so this
    compiles in a fraction of ``model.init``'s time."""

    def init(key):
        params = model.init(key, jnp.zeros((1, 32, 32, 3)))["params"]
        return {"/".join(path): leaf for path, leaf in traverse_util.flatten_dict(params).items() if wanted(path)}

    return {path: np.asarray(leaf) for path, leaf in jax.jit(init)(jax.random.key(0)).items()}


def test_zero_init_residual_zeroes_the_last_norm_of_units_with_a_skip():
    model = EfficientNet(num_classes=3, width_coefficient=0.5, depth_coefficient=2.0, zero_init_residual=True)
    scales = initial_params(model, lambda path: path[0].startswith("blocks_") and path[-1] == "scale")
    assert "blocks_0_1/bn2/scale" in scales  # an expand-ratio-1 unit with a skip: its last norm is bn2
    for unit in {path.rsplit("/", 2)[0] for path in scales}:
        last_norm = f"{unit}/bn3/scale" if f"{unit}/bn3/scale" in scales else f"{unit}/bn2/scale"
        has_skip = not unit.endswith("_0")  # Table 1 at width 0.5: every stage's first unit changes the width
        for path in (path for path in scales if path.startswith(unit + "/")):
            assert np.all(scales[path] == (0.0 if has_skip and path == last_norm else 1.0)), path


def test_conv_kernels_are_he_normal_over_fan_out_per_group():
    """The reference's (and timm's) init: std sqrt(2 / (k * k * out_channels / groups)), depthwise included."""
    kernels = initial_params(
        EfficientNet(num_classes=3), lambda path: path[0] == "blocks_1_0" and path[1] in ("conv_pw", "conv_dw")
    )
    assert kernels["blocks_1_0/conv_pw/kernel"].shape == (1, 1, 16, 96)
    assert kernels["blocks_1_0/conv_pw/kernel"].std() == pytest.approx(math.sqrt(2 / 96), rel=0.1)
    assert kernels["blocks_1_0/conv_dw/kernel"].shape == (3, 3, 1, 96)
    assert kernels["blocks_1_0/conv_dw/kernel"].std() == pytest.approx(math.sqrt(2 / 9), rel=0.1)


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_classes", 0),
        ("width_coefficient", 0.0),
        ("depth_coefficient", -1.0),
        ("head_dropout", 1.0),
        ("survival_probability", 0.0),
        ("survival_probability", 1.5),
        ("bn_momentum", 1.0),
        ("bn_epsilon", 0.0),
        ("padding", "valid"),
        ("bn_group_size", -1),
        ("input_channels", 0),
        ("dtype", "int32"),
        ("dtype", "not_a_dtype"),
    ],
)
def test_a_wrong_field_is_a_clear_value_error(field, value):
    with pytest.raises(ValueError, match=field):
        EfficientNet(**{"num_classes": 10, field: value})


def test_specs_follow_section_4():
    scaling = {name: (spec.kwargs["width_coefficient"], spec.kwargs["depth_coefficient"], spec.input_size,
                      spec.kwargs["head_dropout"]) for name, spec in SPECS.items()}  # fmt: skip
    assert scaling == {
        "efficientnet_b0": (1.0, 1.0, 224, 0.2),
        "efficientnet_b1": (1.0, 1.1, 240, 0.2),
        "efficientnet_b2": (1.1, 1.2, 260, 0.3),
        "efficientnet_b3": (1.2, 1.4, 300, 0.3),
        "efficientnet_b4": (1.4, 1.8, 380, 0.4),
        "efficientnet_b5": (1.6, 2.2, 456, 0.4),
        "efficientnet_b6": (1.8, 2.6, 528, 0.5),
        "efficientnet_b7": (2.0, 3.1, 600, 0.5),
    }
    assert all(spec.module is EfficientNet and "Tan & Le 2019" in spec.source for spec in SPECS.values())
