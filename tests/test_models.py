"""The model zoo against published parameter counts, MACs, hand-computed values and its own contracts."""

import json
import math
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_variables
from units import basic_unit

from resnet_jax.models import __main__ as models_command
from resnet_jax.models import create_model, get_spec, list_models, profile_model
from resnet_jax.models.__main__ import default_num_classes

# torchvision's model cards (ImageNet, 1000 classes) and the papers' tables (CIFAR, 10 classes).
PUBLISHED_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "resnext101_64x4d": 83_455_272,
    "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
    "cifar_resnet20": 269_722,
    "cifar_resnet56": 853_018,
    "cifar_resnet110": 1_727_962,
    "wrn28_10": 36_479_194,
    "resnext29_8x64d": 34_426_698,
}
# Papers' tables give these in millions, rounded: He et al. Table 6, WRN Table 1/4, ResNeXt Table 7.
PUBLISHED_MILLIONS_ROUNDED = {
    "cifar_resnet32": (0.46, 0.01),
    "cifar_resnet44": (0.66, 0.01),
    "cifar_resnet1202": (19.4, 0.1),
    "wrn16_8": (11.0, 0.1),
    "wrn40_4": (8.9, 0.1),
    "resnext29_16x64d": (68.1, 0.1),
}
# torchvision's published "GFLOPS" (multiply-accumulates, 224x224), and He et al.'s CIFAR figures.
PUBLISHED_GMACS = {
    "resnet18": (1.814, 0.005),
    "resnet50": (4.089, 0.005),
    "resnet152": (11.514, 0.005),
    "resnext50_32x4d": (4.230, 0.005),
    "wide_resnet50_2": (11.398, 0.005),
    "cifar_resnet20": (0.041, 0.02),
    "cifar_resnet56": (0.126, 0.02),
}
REQUIRED_NAMES = (
    "resnet18 resnet34 resnet50 resnet101 resnet152 resnext50_32x4d resnext101_32x8d resnext101_64x4d "
    "wide_resnet50_2 wide_resnet101_2 cifar_resnet20 cifar_resnet32 cifar_resnet44 cifar_resnet56 cifar_resnet110 "
    "cifar_resnet1202 cifar_plain20 cifar_plain32 cifar_plain44 cifar_plain56 cifar_plain110 wrn16_8 wrn28_10 "
    "wrn40_4 resnext29_8x64d resnext29_16x64d se_resnet50 se_resnet101 resnet50d res2net50_26w_4s "
    "res2net101_26w_4s preact_resnet18 preact_resnet50"
).split()


def small_input_size(name: str) -> int:
    """A tiny resolution that still leaves every stage at least 1x1."""
    return 32 if get_spec(name).input_size == 224 else 8


def test_registry_has_every_required_name():
    assert set(REQUIRED_NAMES) <= set(list_models())


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameter_count_matches_published(name):
    model = create_model(name, num_classes=default_num_classes(name))
    assert profile_model(model, get_spec(name).input_size).params == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_MILLIONS_ROUNDED))
def test_parameter_count_matches_papers_rounded_figures(name):
    published, rounding = PUBLISHED_MILLIONS_ROUNDED[name]
    millions = profile_model(create_model(name, num_classes=10), 32).params / 1e6
    # Within one unit of the last published digit: ResNeXt-29 16x64d counts 68.155M, printed as 68.1M.
    assert abs(millions - published) < rounding


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_macs_match_published(name):
    published, tolerance = PUBLISHED_GMACS[name]
    model = create_model(name, num_classes=default_num_classes(name))
    macs = profile_model(model, get_spec(name).input_size).macs
    assert macs / 1e9 == pytest.approx(published, rel=tolerance)


def test_cifar_resnet20_macs_by_hand():
    """3x3 convs at 32/16/8 pixels with 16/32/64 filters, option A shortcuts (free), a 64x10 head."""
    stem = 32 * 32 * 16 * (3 * 3 * 3)
    stage1 = 6 * 32 * 32 * 16 * (3 * 3 * 16)
    stage2 = 16 * 16 * 32 * (3 * 3 * 16) + 5 * 16 * 16 * 32 * (3 * 3 * 32)
    stage3 = 8 * 8 * 64 * (3 * 3 * 32) + 5 * 8 * 8 * 64 * (3 * 3 * 64)
    expected = stem + stage1 + stage2 + stage3 + 64 * 10
    assert profile_model(create_model("cifar_resnet20", num_classes=10), 32).macs == expected


def test_plain_nets_have_the_same_parameters_as_option_a_resnets():
    """Option A shortcuts are parameter-free, so plain-N and resnet-N differ only in their wiring."""
    for depth in (20, 56):
        plain = profile_model(create_model(f"cifar_plain{depth}", num_classes=10), 32)
        residual = profile_model(create_model(f"cifar_resnet{depth}", num_classes=10), 32)
        assert plain == residual


NARROW_IMAGENET = dict(widths=(16, 32, 64, 128), stem_width=16)  # the registered shapes: the count tests


# One name per architecture: the deeper and wider names of a family repeat its units with other stage
# sizes or widths, which the exact parameter and MAC counts above check name by name.
ONE_PER_ARCHITECTURE = (
    "resnet18 resnet50 resnext50_32x4d wide_resnet50_2 cifar_resnet20 cifar_plain20 wrn16_8 resnext29_8x64d "
    "se_resnet50 resnet50d res2net50_26w_4s preact_resnet18 preact_resnet50"
).split()


# resnext29_8x64d and wide_resnet50_2 repeat resnext50_32x4d's grouped and resnet50's bottleneck, wider: extended.
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.extended) if name in ("resnext29_8x64d", "wide_resnet50_2") else name
        for name in ONE_PER_ARCHITECTURE
    ],
)
def test_every_architecture_trains_every_parameter_and_statistic(name):
    # An ImageNet net's stages repeat one identity-shortcut unit after the first: two units in the first stage
    # and one in each other build every kind of unit it has (the counts above check the registered depths).
    narrow = {**NARROW_IMAGENET, "stage_sizes": (2, 1, 1, 1)} if get_spec(name).input_size == 224 else {}
    model = create_model(name, num_classes=5, **narrow)
    size = small_input_size(name)
    variables = random_variables(model, size)
    images = jnp.asarray(np.random.default_rng(1).standard_normal((2, size, size, 3), dtype=np.float32))

    # Eager on purpose: XLA compiles each distinct op once per process and reuses it across the
    # repeated blocks of every model, which is several times faster here than compiling whole graphs.
    def loss_and_grads(params, batch_stats):
        def loss_fn(params):
            logits, updates = model.apply(
                {"params": params, "batch_stats": batch_stats}, images, train=True, mutable=["batch_stats"]
            )
            return jnp.mean(jax.nn.log_softmax(logits)[:, 0]), (logits, updates)

        return jax.value_and_grad(loss_fn, has_aux=True)(params)

    (loss, (logits, updates)), grads = loss_and_grads(variables["params"], variables["batch_stats"])
    assert logits.shape == (2, 5) and logits.dtype == jnp.float32
    assert np.isfinite(float(loss))
    assert all(np.isfinite(g).all() for g in jax.tree_util.tree_leaves(grads))
    unreached = [
        jax.tree_util.keystr(path)
        for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]
        if not np.abs(np.asarray(g)).max() > 0
    ]
    assert not unreached, f"no gradient reaches {unreached}"
    changed = jax.tree_util.tree_map(
        lambda a, b: not np.allclose(a, b), variables["batch_stats"], updates["batch_stats"]
    )
    assert all(jax.tree_util.tree_leaves(changed)), "train=True must update every running statistic"


@pytest.mark.parametrize("name", ["cifar_resnet20", "wrn16_8", "resnext29_8x64d"])
def test_eval_mode_leaves_batch_stats_untouched(name):
    model = create_model(name, num_classes=10)
    variables = random_variables(model, 8)
    images = jnp.ones((2, 8, 8, 3))
    _, updates = model.apply(variables, images, train=False, mutable=["batch_stats"])
    jax.tree_util.tree_map(np.testing.assert_array_equal, variables["batch_stats"], updates["batch_stats"])


@pytest.mark.parametrize("name", ["cifar_resnet20", "resnet18", "wrn16_8", "resnext29_8x64d"])
def test_bfloat16_logits_close_to_float32(name):
    size = small_input_size(name) * 2
    float_model = create_model(name, num_classes=10)
    variables = random_variables(float_model, size)
    images = jnp.asarray(np.random.default_rng(2).standard_normal((4, size, size, 3), dtype=np.float32))
    reference = float_model.apply(variables, images)
    bf16_logits = create_model(name, num_classes=10, dtype="bfloat16").apply(variables, images)
    assert bf16_logits.dtype == jnp.float32, "logits stay float32 under bfloat16 compute"
    scale = float(jnp.abs(reference).max())
    # bf16 keeps 8 mantissa bits (relative step 2^-8 ~ 0.4%); measured 0.4-0.6% of the logit scale.
    assert float(jnp.abs(bf16_logits - reference).max()) <= 0.03 * scale
    assert float(jnp.abs(bf16_logits - reference).max()) > 0, "bf16 path must really compute in bf16"


def test_bfloat16_keeps_float32_parameters_and_statistics():
    model = create_model("cifar_resnet20", num_classes=10, dtype="bfloat16")
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.ones((1, 8, 8, 3)), train=False))
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(shapes)} == {jnp.dtype("float32")}


def test_he_fan_out_initialisation():
    """Conv kernels ~ N(0, 2 / (k*k*out_channels)), as torchvision's kaiming_normal_(mode='fan_out')."""
    model = create_model("cifar_resnet20", num_classes=10, stage_sizes=(1, 1, 2))
    params = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))(jnp.ones((1, 8, 8, 3)))["params"]
    kernel = np.asarray(params["layer2_0"]["conv1"]["kernel"])  # 3x3x16x32: fan_out 288, fan_in 144
    assert kernel.std() == pytest.approx(math.sqrt(2.0 / (3 * 3 * 32)), rel=0.05)
    assert np.asarray(params["layer3_1"]["bn2"]["scale"]).tolist() == [1.0] * 64


@pytest.mark.parametrize(
    "name, zeroed",
    [
        # A bottleneck's zeroed last BN: the unit checkpoints and test_hrnet's zero-init test check it in CI.
        pytest.param("resnet50", ("bn3", "scale"), marks=pytest.mark.extended),
        ("cifar_resnet20", ("bn2", "scale")),
        ("wrn16_8", ("conv2", "kernel")),
    ],
)
def test_zero_init_residual_zeroes_each_branch_and_gradients_still_flow(name, zeroed):
    """Post-activation: the last BN scale; pre-activation: the last conv (a zero BN before a ReLU kills gradients)."""
    # Narrow widths and one unit per stage keep compilation cheap; the unit kind is the registered one.
    num_stages = len(get_spec(name).kwargs["stage_sizes"])
    model = create_model(
        name,
        num_classes=10,
        zero_init_residual=True,
        widths=(4,) * num_stages,
        stem_width=4,
        stage_sizes=(1,) * num_stages,
    )
    images = jnp.asarray(np.random.default_rng(0).standard_normal((2, 32, 32, 3), dtype=np.float32))
    variables = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))(images)
    params = variables["params"]
    blocks = [key for key in params if key.startswith("layer")]
    module, leaf = zeroed
    assert blocks and all(not np.asarray(params[b][module][leaf]).any() for b in blocks)
    assert np.asarray(params[blocks[0]]["conv1"]["kernel"]).any(), "only the end of a branch is zeroed"

    def loss(params):
        logits, _ = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]}, images, train=True, mutable=["batch_stats"]
        )
        return jnp.sum(logits**2)

    grads = jax.grad(loss)(params)
    assert all(np.abs(np.asarray(grads[b][module][leaf])).max() > 0 for b in blocks), "zeroed leaves must learn"


def _block(shortcut, activation_order="post", out_width=8):
    return basic_unit(
        out_width, 2, shortcut=shortcut, activation_order=activation_order, zero_init_residual=shortcut != "none"
    )


def test_option_a_shortcut_subsamples_and_zero_pads():
    """With the branch zeroed, a downsampling option-A block is relu(x[::2, ::2] ++ zeros)."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 6, 4), dtype=np.float32))
    block = _block("A")
    variables = block.init(jax.random.key(0), x, train=False)
    assert "downsample_conv" not in variables["params"]
    out = np.asarray(block.apply(variables, x, train=False))
    expected = np.maximum(np.concatenate([np.asarray(x)[:, ::2, ::2, :], np.zeros((2, 3, 3, 4))], axis=-1), 0)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_option_b_shortcut_projects_with_batchnorm():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 6, 4), dtype=np.float32))
    block = _block("B")
    variables = block.init(jax.random.key(0), x, train=False)
    kernel = np.asarray(variables["params"]["downsample_conv"]["kernel"])[0, 0]  # (4, 8)
    projected = np.asarray(x)[:, ::2, ::2, :] @ kernel
    expected = np.maximum(projected / np.sqrt(1 + 1e-5), 0)  # fresh BN in eval: x / sqrt(1 + eps)
    np.testing.assert_allclose(np.asarray(block.apply(variables, x, train=False)), expected, atol=1e-5)


def test_plain_block_has_no_shortcut():
    """A plain block's output is exactly relu(branch): scaling the last BN to 0 gives all zeros."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 6, 8), dtype=np.float32))
    block = _block("none")
    variables = block.init(jax.random.key(0), x, train=False)
    variables["params"]["bn2"]["scale"] = jnp.zeros(8)
    assert not np.asarray(block.apply(variables, x, train=False)).any()


def test_preactivation_projection_uses_the_preactivated_input():
    """He et al. 2016b / WRN: the 1x1 projection sees relu(bn1(x)), and has no BN of its own."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 6, 4), dtype=np.float32))
    block = _block("B", activation_order="full_preactivation")
    variables = block.init(jax.random.key(0), x, train=False)
    assert "downsample_bn" not in variables["params"]
    kernel = np.asarray(variables["params"]["downsample_conv"]["kernel"])[0, 0]
    preactivated = np.maximum(np.asarray(x) / np.sqrt(1 + 1e-5), 0)[:, ::2, ::2, :]
    np.testing.assert_allclose(np.asarray(block.apply(variables, x, train=False)), preactivated @ kernel, atol=1e-5)


def test_dropout_is_active_only_in_training():
    model = create_model("wrn16_8", num_classes=10, block_dropout=0.3)
    variables = random_variables(model, 8)
    images = jnp.ones((2, 8, 8, 3))

    def run(seed):
        return model.apply(
            variables, images, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(seed)}
        )[0]

    assert not np.allclose(run(0), run(1))
    np.testing.assert_array_equal(model.apply(variables, images), model.apply(variables, images))


def test_return_features_gives_every_stage():
    model = create_model("resnet50", num_classes=10)
    variables = random_variables(model, 64)
    features = model.apply(variables, jnp.ones((1, 64, 64, 3)), return_features=True)
    shapes = {key: value.shape for key, value in features.items()}
    assert shapes == {
        "stem": (1, 16, 16, 64),
        "layer1": (1, 16, 16, 256),
        "layer2": (1, 8, 8, 512),
        "layer3": (1, 4, 4, 1024),
        "layer4": (1, 2, 2, 2048),
        "pooled": (1, 2048),
        "logits": (1, 10),
    }
    np.testing.assert_allclose(features["logits"], model.apply(variables, jnp.ones((1, 64, 64, 3))), atol=1e-6)


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match="unknown model 'resnet51'.*resnet50.*cifar_resnet20"):
        create_model("resnet51", num_classes=10)


@pytest.mark.parametrize("name", ["wrn16_8", "efficientnet_b0", "hrnet_w18_small"])
def test_the_old_dropout_rate_is_refused_with_a_paragraph_naming_its_two_new_names(name):
    """dropout_rate meant dropout inside the blocks (ResNet) and before the classifier (EfficientNet, HRNet)."""
    with pytest.raises(ValueError, match="two names now: block_dropout, .* and head_dropout, ") as refusal:
        create_model(name, num_classes=10, dropout_rate=0.3)
    assert "\n" not in str(refusal.value)
    assert create_model("wrn16_8", num_classes=10, block_dropout=0.3).block_dropout == 0.3
    assert create_model("efficientnet_b0", num_classes=10, head_dropout=0.3).head_dropout == 0.3


def test_unknown_override_lists_valid_fields():
    with pytest.raises(ValueError, match="unknown override.*shortcutt.*shortcut"):
        create_model("resnet18", num_classes=10, shortcutt="A")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"shortcut": "E"}, "shortcut must be one of"),
        ({"activation_order": "pre"}, "activation_order must be one of"),
        ({"block_dropout": 1.5}, "block_dropout"),
        ({"stochastic_depth": 0.0}, r"stochastic_depth must be in \(0, 1\]"),
        ({"block": "res2net"}, "'res2net' needs scale >= 2"),
        ({"scale": 4}, "scale applies to res2net blocks only"),
        ({"gate": "exclusive", "shortcut": "none"}, "shortcut='none' has none"),
        ({"activation_order": "relu_before_addition", "zero_init_residual": True}, "relu'\\(0\\) = 0"),
        ({"se_ratio": 0.01}, "se_ratio=0.01 leaves no hidden unit"),
        ({"shortcut": "none", "zero_init_residual": True}, "plain network"),
        ({"dtype": "int8"}, "dtype must be a float"),
        ({"widths": (16, 8, 64)}, "option A.*cannot narrow"),
    ],
)
def test_bad_overrides_are_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        create_model("cifar_resnet20", num_classes=10, **overrides)


@pytest.mark.parametrize("shape", [(8, 8, 3), (1, 8, 8, 1), (1, 3, 8, 8), (1, 1, 8, 8, 3)])
def test_wrong_image_shape_is_a_clear_error(shape):
    model = create_model("cifar_resnet20", num_classes=10)
    with pytest.raises(ValueError, match=r"expected NHWC images of shape \(batch, height, width, 3\)"):
        model.init(jax.random.key(0), jnp.ones(shape), train=False)


def test_integer_images_are_a_clear_error():
    model = create_model("cifar_resnet20", num_classes=10)
    with pytest.raises(TypeError, match="floating-point images"):
        model.init(jax.random.key(0), jnp.ones((1, 8, 8, 3), jnp.uint8), train=False)


def test_the_zoo_is_three_modules_resnet_efficientnet_and_hrnet():
    """Every residual-network variant is one ResNet module with options; EfficientNet and HRNet are their own."""
    families = {name: type(create_model(name, num_classes=10)).__name__ for name in list_models()}
    assert {name for name, family in families.items() if family == "EfficientNet"} == {
        f"efficientnet_b{index}" for index in range(8)
    }
    assert {name for name, family in families.items() if family == "HRNet"} == {
        "hrnet_w18_small",
        "hrnet_w18_small_v2",
        *(f"hrnet_w{width}" for width in (18, 30, 32, 40, 44, 48, 64)),
    }
    assert set(families.values()) == {"ResNet", "EfficientNet", "HRNet"}


def test_model_table_json_cli():
    result = subprocess.run(
        [sys.executable, "-m", "resnet_jax.models", "--json", "resnet50", "cifar_resnet20"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["resnet50", "cifar_resnet20"]
    assert rows[0]["params"] == PUBLISHED_PARAMS["resnet50"] and rows[0]["input_size"] == 224
    assert rows[1]["params"] == PUBLISHED_PARAMS["cifar_resnet20"] and rows[1]["input_size"] == 32
    assert set(rows[0]) >= {"name", "params", "macs", "input_size"}


@pytest.mark.slow
def test_model_table_lists_every_model(capsys, monkeypatch):
    """Every registered name, in order, with its input size. The counts are stood in for (the JSON test above
    and the published-count tests check the real ones), so that this costs no shape evaluation of 50 models."""
    counted = []

    def stand_in_profile(model, input_size):
        counted.append(model)
        return types.SimpleNamespace(params=1_234_567, macs=7 * 10**9)

    monkeypatch.setattr(models_command, "profile_model", stand_in_profile)
    models_command.main([])  # in-process: the JSON test above runs the real command
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["name", "params", "MACs", "input"]
    assert [line.split()[0] for line in lines[1:]] == list_models() and len(counted) == len(list_models())
    sizes = {line.split()[0]: line.split()[3] for line in lines[1:]}
    assert (sizes["resnet50"], sizes["cifar_resnet20"], sizes["efficientnet_b7"]) == ("224x224", "32x32", "600x600")
    assert all("1,234,567" in line for line in lines[1:])


def test_model_table_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit) as exit_info:
        models_command.main(["resnet51"])
    assert exit_info.value.code == 2 and "unknown model 'resnet51'" in capsys.readouterr().err


def _summary(capsys, *argv: str) -> tuple[dict[tuple[int, str], list[str]], list[str]]:
    """Run ``--summary`` in-process: rows keyed by (depth, name), and the total line's fields."""
    models_command.main(["--summary", *argv])
    lines = capsys.readouterr().out.splitlines()
    rows = {}
    for line in lines[2:-1]:
        depth = (len(line) - len(line.lstrip())) // 2
        fields = line.split()
        rows[depth, fields[0]] = fields[1:]
    return rows, lines[-1].split()


def test_summary_prints_the_module_tree_whose_totals_are_the_published_figures(capsys):
    rows, total = _summary(capsys, "resnet50")
    assert total[0] == "total" and int(total[-2].replace(",", "")) == PUBLISHED_PARAMS["resnet50"]
    macs = int(total[-1].replace(",", ""))
    assert macs == pytest.approx(4.09e9, rel=1e-3)  # torchvision's 4.09 GFLOPS (multiply-adds) for resnet50
    top = [fields for (depth, _), fields in rows.items() if depth == 0]
    assert sum(int(fields[-2].replace(",", "")) for fields in top) == PUBLISHED_PARAMS["resnet50"]
    assert sum(int(fields[-1].replace(",", "")) for fields in top) == macs  # the stages add up to the model
    assert rows[0, "conv1"] == ["Conv", "112x112x64", "9,408", f"{112 * 112 * 64 * 7 * 7 * 3:,}"]  # by hand
    assert rows[0, "layer4_2"][1] == "7x7x2048" and rows[0, "fc"][:2] == ["Dense", "1000"]
    assert rows[1, "conv3"][0] == "Conv"  # a unit's layers are indented under it
    smaller, total_160 = _summary(capsys, "resnet50", "--input_size", "160")
    # Every feature map shrinks by 5/7 per side at 160 (112 -> 80 ... 7 -> 5): conv MACs scale by 25/49 exactly.
    fc_macs = 2048 * 1000
    assert int(total_160[-1].replace(",", "")) - fc_macs == (macs - fc_macs) * 25 // 49
    assert smaller[0, "layer4_2"][1] == "5x5x2048"


def test_summary_arguments_that_cannot_apply_are_refused(capsys):
    for argv in (
        ["--input_size", "160"],
        ["--summary", "resnet50", "--input_size", "0"],
        ["--summary", "resnet50", "resnet18"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            models_command.main(argv)
        assert exit_info.value.code == 2
    assert "--summary NAME" in capsys.readouterr().err
