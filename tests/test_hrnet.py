"""HRNet (resnet_jax.models.hrnet) against the paper, timm, an independent PyTorch reference and hand counts."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import random_variables
from flax import traverse_util
from timm_models import import_timm, timm_model

from resnet_jax.convert import from_state_dict, indexed_torch_key
from resnet_jax.models import abstract_variables, profile_model
from resnet_jax.models.hrnet import SPECS, HRNet

# The official HRNet-Image-Classification configs (experiments/cls_hrnet_*.yaml), in TorchHRNet's arguments:
# branch width C, HR modules in stages 2-4, basic blocks per branch, stage-1 bottlenecks and their inner width.
OFFICIAL_CONFIGS = {
    "hrnet_w18_small": dict(width=16, modules=(1, 1, 1), blocks=2, stage1_blocks=1, stage1_width=32),
    "hrnet_w18_small_v2": dict(width=18, modules=(1, 3, 2), blocks=2, stage1_blocks=2, stage1_width=64),
    **{
        f"hrnet_w{c}": dict(width=c, modules=(1, 4, 3), blocks=4, stage1_blocks=4, stage1_width=64)
        for c in (18, 30, 32, 40, 44, 48, 64)
    },
}
# The paper's table / the official README: (#Params in millions, "GFLOPs"). The official counter
# (lib/utils/modelsummary.py) sums conv and linear multiply-adds and divides by 1024**3, so a "GFLOP" is 2**30 MACs.
PAPER = {
    "hrnet_w18_small": (13.2, 1.49),
    "hrnet_w18_small_v2": (15.6, 2.42),
    "hrnet_w18": (21.3, 3.99),
    "hrnet_w30": (37.7, 7.55),
    "hrnet_w32": (41.2, 8.31),
    "hrnet_w40": (57.6, 11.8),
    "hrnet_w44": (67.1, 13.9),
    "hrnet_w48": (77.5, 16.1),
    "hrnet_w64": (128.1, 26.9),
}
TIMM_PARAMS = {"hrnet_w18": 21_299_004, "hrnet_w18_small": 13_187_464, "hrnet_w18_small_v2": 15_597_464}
W18_GMACS_DECIMAL = 4.3  # 3.99 * 2**30 / 1e9; timm and mmpretrain list 4.32 / 4.33
HEAD_WIDTHS, HEAD_FEATURES = (32, 64, 128, 256), 2048
PARITY_SIZE = 64
# XLA's CPU optimisation passes take most of this file's time on these small inputs; the maths is the same.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def compile_fast(function, *args):
    """``function`` compiled for ``args`` without XLA's slow optimisation passes."""
    return jax.jit(function).lower(*args).compile(compiler_options=FAST_COMPILE)


@functools.cache
def profile(name: str):
    """Parameters and MACs of the registered ``name`` at its input size, by shape evaluation."""
    spec = SPECS[name]
    return profile_model(spec.module(num_classes=1000, **spec.kwargs), spec.input_size)


def torch_reference(name: str, num_classes: int = 1000, device: str = "cpu"):
    """The independent PyTorch HRNet for ``name``'s official config (on 'meta' nothing is allocated)."""
    torch = pytest.importorskip("torch", reason="torch==2.13.0 (the torch extra) is not installed")
    import torch_hrnet

    with torch.device(device):
        return torch_hrnet.TorchHRNet(num_classes=num_classes, **OFFICIAL_CONFIGS[name])


def timm_on_meta(name: str):
    """timm's ``name`` without weights: shapes only."""
    return import_timm().create_model(name, pretrained=False, device="meta")


def torch_shapes(model) -> dict[str, tuple[int, ...]]:
    """state_dict key -> shape, ``num_batches_tracked`` left out."""
    return {key: tuple(value.shape) for key, value in model.state_dict().items() if "num_batches" not in key}


def parameter_count(model) -> int:
    """Trainable parameters of a torch module."""
    return sum(parameter.numel() for parameter in model.parameters())


# --- sizes -------------------------------------------------------------------------------------------------


def test_registry_holds_the_papers_models():
    assert set(SPECS) == set(PAPER)
    assert all(spec.input_size == 224 and spec.module is HRNet for spec in SPECS.values())


@pytest.mark.parametrize("name", sorted(PAPER))
def test_parameters_match_timm_the_reference_and_the_paper(name):
    params = profile(name).params
    millions, _ = PAPER[name]
    assert round(params / 1e6, 1) == millions
    if name in TIMM_PARAMS:
        assert params == TIMM_PARAMS[name]
    assert params == parameter_count(torch_reference(name, device="meta"))
    assert params == parameter_count(timm_on_meta(name))


@pytest.mark.parametrize("name", sorted(PAPER))
def test_reference_has_timms_keys_and_shapes(name):
    """The reference is a fair stand-in for timm: the same state_dict, key for key and shape for shape."""
    assert torch_shapes(torch_reference(name, device="meta")) == torch_shapes(timm_on_meta(name))


def conv_macs(in_width: int, out_width: int, kernel_size: int, side: int) -> int:
    """A convolution's multiply-accumulates producing a side x side map."""
    return kernel_size * kernel_size * in_width * out_width * side * side


def bottleneck_macs(in_width: int, width: int, side: int) -> int:
    """1x1, 3x3, 1x1 to 4x width, and a 1x1 projection when the width changes."""
    out = 4 * width
    projection = conv_macs(in_width, out, 1, side) if in_width != out else 0
    inner = conv_macs(in_width, width, 1, side) + conv_macs(width, width, 3, side) + conv_macs(width, out, 1, side)
    return inner + projection


def hand_macs(width, modules, blocks, stage1_blocks, stage1_width, image=224, classes=1000) -> int:
    """Per-layer count of the HRNet-W*-C network (paper Sec. 3-4), branch i at side image / 4 / 2**i."""
    sides = [image // 4 // 2**i for i in range(4)]
    widths = [width * 2**i for i in range(4)]
    total = conv_macs(3, 64, 3, image // 2) + conv_macs(64, 64, 3, sides[0])
    in_width = 64
    for _ in range(stage1_blocks):
        total += bottleneck_macs(in_width, stage1_width, sides[0])
        in_width = 4 * stage1_width
    previous = [in_width]
    for branches, count in zip((2, 3, 4), modules, strict=True):
        # transition: 3x3 conv where an existing branch changes width, a 3x3/2 conv for the new branch
        total += sum(conv_macs(a, widths[i], 3, sides[i]) for i, a in enumerate(previous) if a != widths[i])
        total += conv_macs(previous[-1], widths[branches - 1], 3, sides[branches - 1])
        for _ in range(count):
            total += sum(blocks * 2 * conv_macs(widths[i], widths[i], 3, sides[i]) for i in range(branches))
            for target in range(branches):
                for source in range(branches):
                    if source > target:  # 1x1 at the low resolution, then upsampling
                        total += conv_macs(widths[source], widths[target], 1, sides[source])
                    for hop in range(source + 1, target + 1):  # 3x3/2 convs down to the target
                        out = widths[target] if hop == target else widths[source]
                        total += conv_macs(widths[source], out, 3, sides[hop])
        previous = widths[:branches]
    for i in range(4):
        total += bottleneck_macs(widths[i], HEAD_WIDTHS[i], sides[i])
        if i:
            total += conv_macs(4 * HEAD_WIDTHS[i - 1], 4 * HEAD_WIDTHS[i], 3, sides[i])
    return total + conv_macs(4 * HEAD_WIDTHS[-1], HEAD_FEATURES, 1, sides[-1]) + HEAD_FEATURES * classes


@pytest.mark.parametrize("name", ["hrnet_w18_small", "hrnet_w18_small_v2", "hrnet_w18"])
def test_macs_match_a_hand_count(name):
    assert profile(name).macs == hand_macs(**OFFICIAL_CONFIGS[name])


@pytest.mark.parametrize("name", sorted(PAPER))
def test_macs_match_the_papers_gflops(name):
    _, gflops = PAPER[name]
    assert profile(name).macs / 2**30 == pytest.approx(gflops, abs=0.051 if gflops >= 10 else 0.0051)


def test_w18_macs_within_three_percent_of_4_3_billion():
    assert profile("hrnet_w18").macs / 1e9 == pytest.approx(W18_GMACS_DECIMAL, rel=0.03)


# --- parity ------------------------------------------------------------------------------------------------


def randomise_batch_norm(model):
    """Random BatchNorm affine parameters and running statistics, so that eval mode tests them."""
    import torch

    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                size = module.num_features
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.1)
    return model.eval()


def flax_model_and_variables(name: str, state_dict, num_classes: int = 1000):
    """The registered ``name`` and its variables converted from a timm-layout ``state_dict``."""
    spec = SPECS[name]
    model = spec.module(num_classes=num_classes, **spec.kwargs)
    flat = traverse_util.flatten_dict(abstract_variables(model, PARITY_SIZE))
    expected = {indexed_torch_key(path): (path, tuple(leaf.shape)) for path, leaf in flat.items()}
    return model, from_state_dict(state_dict, expected, name)


def assert_same_logits(name: str, torch_model):
    """Eval-mode logits of ``torch_model`` and of the registered ``name`` given its weights agree to 1e-4."""
    import torch

    images = np.random.default_rng(0).standard_normal((2, PARITY_SIZE, PARITY_SIZE, 3)).astype(np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
    model, variables = flax_model_and_variables(name, torch_model.state_dict())
    logits = np.asarray(compile_fast(model.apply, variables, images)(variables, images))
    assert np.abs(expected).max() > 0.1  # a forward pass that carries signal, not a near-zero output
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)


def test_forward_matches_timm():
    assert_same_logits("hrnet_w18_small", timm_model("hrnet_w18_small"))


def test_forward_matches_the_reference():
    """Stage-1 width 64, two bottlenecks, several HR modules per stage: what hrnet_w18_small does not have."""
    torch = pytest.importorskip("torch", reason="torch==2.13.0 (the torch extra) is not installed")
    torch.manual_seed(0)
    assert_same_logits("hrnet_w18_small_v2", randomise_batch_norm(torch_reference("hrnet_w18_small_v2")))


# --- training and the module's contract ----------------------------------------------------------------------


TINY = dict(num_classes=2, width=2, modules_per_stage=(1, 1, 1), blocks_per_branch=1, stage1_blocks=1, stage1_width=2)


def test_every_parameter_gets_a_gradient():
    model = HRNet(**TINY | {"num_classes": 3})  # every stage, branch and fusion of the registered nets, narrow
    images = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))
    labels = jnp.array([0, 1, 2, 1])
    variables = random_variables(model, 32)

    def loss(params):
        logits, _ = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]}, images, train=True, mutable=["batch_stats"]
        )
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    gradients = compile_fast(jax.grad(loss), variables["params"])(variables["params"])
    flat = traverse_util.flatten_dict(gradients, sep="/")
    dead = [path for path, grad in flat.items() if not np.any(np.asarray(grad))]
    assert not dead, f"parameters without gradient: {dead[:10]}"
    assert len(flat) == len(traverse_util.flatten_dict(variables["params"]))


def test_zero_init_residual_zeroes_exactly_the_last_bn_of_each_block():
    model = HRNet(**TINY, zero_init_residual=True)
    key, images = jax.random.key(0), jnp.zeros((1, 32, 32, 3))
    params = compile_fast(model.init, key, images)(key, images)["params"]
    scales = {indexed_torch_key(("params", *path)): value for path, value in traverse_util.flatten_dict(params).items()}
    scales = {key: value for key, value in scales.items() if ".bn" in key and key.endswith("weight")}
    # timm's names: stage-1 and head bottlenecks end in bn3, basic blocks (in "branches") in bn2
    zeroed = {key for key in scales if key.endswith(".bn3.weight") or (".branches." in key and ".bn2." in key)}
    assert zeroed and len(zeroed) < len(scales)
    for key, value in scales.items():
        assert np.all(np.asarray(value) == (0.0 if key in zeroed else 1.0)), key


def test_features_have_the_papers_resolutions_and_widths():
    model = HRNet(**{**TINY, "width": 18})
    features = jax.eval_shape(
        lambda x: model.init_with_output(jax.random.key(0), x, return_features=True)[0],
        jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32),
    )
    shapes = {key: value.shape for key, value in features.items()}
    assert shapes == {
        "stem": (1, 16, 16, 64),
        "layer1": (1, 16, 16, 8),
        **{f"layer{stage}": (1, 16, 16, 18) for stage in (2, 3, 4)},
        **{f"branch{i + 1}": (1, 16 // 2**i, 16 // 2**i, 18 * 2**i) for i in range(4)},
        "pooled": (1, HEAD_FEATURES),
        "logits": (1, 2),
    }


@pytest.mark.parametrize("size", [200, 97])
def test_sizes_that_round_up_still_fuse(size):
    """Where a 3x3/2 conv rounds an odd side up, the upsampled map is cropped to its target's side."""
    logits = jax.eval_shape(
        lambda x: HRNet(**TINY).init_with_output(jax.random.key(0), x)[0],
        jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32),
    )
    assert logits.shape == (1, 2)


def test_bfloat16_compute_keeps_float32_parameters_and_logits():
    model = HRNet(**TINY, dtype="bfloat16")
    logits, variables = jax.eval_shape(
        lambda x: model.init_with_output(jax.random.key(0), x), jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    )
    assert logits.dtype == jnp.float32
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(variables)} == {jnp.dtype(jnp.float32)}


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_classes", 0),
        ("width", 0),
        ("modules_per_stage", (1, 4)),
        ("modules_per_stage", (1, 0, 3)),
        ("blocks_per_branch", 0),
        ("stage1_blocks", 0),
        ("stage1_width", 0),
        ("bn_group_size", -1),
        ("head_dropout", 1.0),
        ("input_channels", 0),
        ("dtype", "int32"),
        ("dtype", "float33"),
    ],
)
def test_a_wrong_field_is_a_clear_error(field, value):
    with pytest.raises(ValueError, match=field):
        HRNet(**{**TINY, field: value})
