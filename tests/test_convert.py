"""torchvision state_dict -> Flax: strict key mapping and numerical parity with a PyTorch reference."""

import contextlib
import copy
import math

import numpy as np
import pytest

from resnet_jax.convert import expected_torch_keys, from_torchvision
from resnet_jax.models import create_model

torch = pytest.importorskip("torch", reason="parity tests need torch: pip install -e '.[torch]'")
import torch_cifar  # noqa: E402  (needs torch)
import torch_resnet  # noqa: E402  (needs torch)

IMAGENET_MODELS = sorted(torch_resnet.TORCHVISION_ARCHITECTURES)


def _reference(name: str, num_classes: int = 10, seed: int = 0):
    return torch_resnet.seeded(lambda: torch_resnet.build(name, num_classes).eval(), seed)


def _assert_features_match(name, network, images) -> None:
    """The converted model's stem, stage outputs and logits equal the eval-mode PyTorch network's to 1e-4."""
    with torch.no_grad():
        expected = {key: value.numpy() for key, value in network(images).items()}
    variables = from_torchvision(network.state_dict(), name)
    model = create_model(name, num_classes=10)
    got = model.apply(variables, images.numpy().transpose(0, 2, 3, 1), train=False, return_features=True)
    for key, value in expected.items():
        reference = value.transpose(0, 2, 3, 1) if value.ndim == 4 else value
        assert np.asarray(got[key]).shape == reference.shape, key
        assert np.abs(np.asarray(got[key]) - reference).max() <= 1e-4, key


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"])
def test_logits_and_stage_features_match_pytorch(name):
    network, generator = _reference(name)
    _assert_features_match(name, network, torch.randn(2, 3, 64, 64, generator=generator))


CIFAR_REFERENCES = {
    "cifar_resnet20": lambda: torch_cifar.he2016(20, "A"),
    "cifar_plain20": lambda: torch_cifar.he2016(20, "none"),
    "wrn16_8": lambda: torch_cifar.wide_resnet(16, 8, dropout=0.3),
    "resnext29_8x64d": lambda: torch_cifar.resnext29(8, 64),
}


@pytest.mark.parametrize("name", sorted(CIFAR_REFERENCES))
def test_cifar_family_matches_an_independent_pytorch_network(name):
    """He et al.'s option A and plain nets, pre-activation WRN and ResNeXt-29, against PyTorch from the papers."""
    network, generator = torch_resnet.seeded(lambda: CIFAR_REFERENCES[name]().eval(), 1)
    _assert_features_match(name, network, torch.randn(2, 3, 32, 32, generator=generator))


TRAINING_REFERENCES = {  # no dropout: the two frameworks draw different masks
    "cifar_resnet20": lambda: torch_cifar.he2016(20, "A"),
    "wrn16_8": lambda: torch_cifar.wide_resnet(16, 8, dropout=0.0),
    "resnet50": lambda: torch_resnet.build("resnet50", 10),  # bottleneck, ImageNet stem, option B
    "resnext29_8x64d": lambda: torch_cifar.resnext29(8, 64),  # grouped 3x3 convolutions
}
# The bottleneck and grouped nets in training mode are outside CI's 15 minutes (-m extended runs them): training
# mode differs from eval only in BatchNorm's batch statistics and the SGD step, the same code in every family
# (checked on cifar_resnet20 and wrn16_8); their forward passes are test_logits_and_stage_features_match_pytorch's.
EXTENDED = pytest.mark.extended
TRAINING_CASES = [
    (name, 0) if name in ("cifar_resnet20", "wrn16_8") else pytest.param(name, 0, marks=EXTENDED)
    for name in TRAINING_REFERENCES
] + [("cifar_resnet20", 4)]  # + per-group BN


def _torch_training_step(network, images, labels, bn_group_size: int) -> float:
    """Forward (each group of ``bn_group_size`` examples on its own, as per-GPU BatchNorm), backward and one
    SGD step (momentum 0.9, weight decay 5e-4 on every parameter); returns the loss."""
    groups = images.split(bn_group_size) if bn_group_size else [images]
    logits = torch.cat([network(group)["logits"] for group in groups])
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    return loss.item()


# A float32 forward pass cannot tell the sign of a pre-activation within about this much of zero, so where the
# float64 reference has one, the frameworks may take different ReLU branches there (seen on resnext29 with
# one CPU's kernels: a value of 2.7e-9, after which leaves were up to 0.8 % off). Bugs in a backward pass
# show as errors of tens of percent, so a 2 % allowance in those cases still catches them.
RELU_SIGN_NOISE = 1e-6
RELU_FLIP_ALLOWANCE = 2e-2


@contextlib.contextmanager
def smallest_relu_input() -> list[float]:
    """Within the block, the smallest |x| that any ReLU (``F.relu`` or ``nn.ReLU``) receives, as ``[value]``."""
    smallest, relu = [math.inf], torch.nn.functional.relu

    def recording(x, *args, **kwargs):
        smallest[0] = min(smallest[0], float(x.detach().abs().min()))
        return relu(x, *args, **kwargs)

    torch.nn.functional.relu = recording
    try:
        yield smallest
    finally:
        torch.nn.functional.relu = relu


def _gradients_and_statistics(name, network) -> dict:
    """Flax-layout variables holding each parameter's gradient and the updated BN statistics."""
    return from_torchvision({**network.state_dict(), **{k: p.grad for k, p in network.named_parameters()}}, name)


@pytest.mark.slow
@pytest.mark.parametrize("name, bn_group_size", TRAINING_CASES)
def test_training_mode_and_one_sgd_step_match_pytorch(name, bn_group_size):
    """Batch-statistics forward, updated running statistics, every gradient of the loss and the parameters
    after one SGD step, as in PyTorch.

    BatchNorm's backward pass loses digits in float32 (PyTorch's own float32 gradients are ~0.1% off),
    so the reference is PyTorch in float64: each leaf's relative error may be at most 10x PyTorch's, plus
    ``RELU_FLIP_ALLOWANCE`` where the reference feeds a ReLU a value float32 cannot place on its side of zero.
    With per-group statistics the groups update the running statistics one after the other in PyTorch
    and together here, so only the loss, gradients and step are compared.
    """
    import jax
    import optax

    from resnet_jax.train.optim import make_optimizer

    network, generator = torch_resnet.seeded(lambda: TRAINING_REFERENCES[name]().train(), 2)
    variables = from_torchvision(network.state_dict(), name)  # before the forward pass updates them
    images = torch.randn(8, 3, 16, 16, generator=generator)  # 16x16 keeps it fast; the nets are convolutional
    labels = torch.randint(0, 10, (8,), generator=generator)
    exact_network = copy.deepcopy(network).double()
    with smallest_relu_input() as smallest:
        exact_loss = _torch_training_step(exact_network, images.double(), labels, bn_group_size)
    allowance = RELU_FLIP_ALLOWANCE if smallest[0] < RELU_SIGN_NOISE else 0.0
    exact = _gradients_and_statistics(name, exact_network)
    float32_loss = _torch_training_step(network, images, labels, bn_group_size)
    float32 = _gradients_and_statistics(name, network)
    stepped_by_torch = {}
    for precision, net in (("exact", exact_network), ("float32", network)):
        torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4).step()
        stepped_by_torch[precision] = from_torchvision(net.state_dict(), name)["params"]

    model = create_model(name, num_classes=10, bn_group_size=bn_group_size)

    def loss_fn(params):
        logits, updates = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]},
            images.numpy().transpose(0, 2, 3, 1),
            train=True,
            mutable=["batch_stats"],
        )
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels.numpy()).mean(), updates

    (loss, updates), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(variables["params"])
    assert abs(float(loss) - exact_loss) <= 10 * abs(float32_loss - exact_loss) + 1e-6
    compared = ("params",) if bn_group_size else ("params", "batch_stats")
    got = {"params": grads, "batch_stats": updates["batch_stats"]}

    def relative_error(value, reference):
        return float(np.linalg.norm(np.asarray(value) - reference) / max(np.linalg.norm(reference), 1e-30))

    def assert_as_close_as_torch_float32(ours, torch_float32, exact_tree, what):
        errors = jax.tree.map(relative_error, ours, exact_tree)
        torch_errors = jax.tree.map(relative_error, torch_float32, exact_tree)
        leaves = zip(jax.tree_util.tree_leaves_with_path(errors), jax.tree.leaves(torch_errors), strict=True)
        for (path, error), torch_error in leaves:
            where = f"{what}{jax.tree_util.keystr(path)}"
            assert error <= 10 * torch_error + 1e-6 + allowance, f"{where}: {error} vs PyTorch's {torch_error}"

    for collection in compared:
        assert_as_close_as_torch_float32(got[collection], float32[collection], exact[collection], collection)
    decay_everything = lambda tree: jax.tree.map(lambda _: True, tree)  # noqa: E731  (torch's weight_decay)
    tx = make_optimizer(name="sgd", learning_rate=0.1, weight_decay=5e-4, decay_mask=decay_everything)
    step_updates, _ = tx.update(grads, tx.init(variables["params"]), variables["params"])
    stepped = optax.apply_updates(variables["params"], step_updates)
    assert_as_close_as_torch_float32(stepped, stepped_by_torch["float32"], stepped_by_torch["exact"], "stepped")


@pytest.mark.parametrize("name", IMAGENET_MODELS)
def test_every_imagenet_model_maps_every_torchvision_key(name):
    """Key sets and shapes agree for every ImageNet model; built on torch's meta device, so no memory."""
    with torch.device("meta"):
        network = torch_resnet.build(name)
    torch_shapes = {k: tuple(v.shape) for k, v in network.state_dict().items() if "num_batches_tracked" not in k}
    expected = expected_torch_keys(name, num_classes=1000)
    assert set(expected) == set(torch_shapes)
    for key, (_, flax_shape) in expected.items():
        torch_shape = torch_shapes[key]
        if len(torch_shape) == 4:
            torch_shape = (torch_shape[2], torch_shape[3], torch_shape[1], torch_shape[0])
        elif len(torch_shape) == 2:
            torch_shape = torch_shape[::-1]
        assert flax_shape == torch_shape, key


def test_numpy_values_and_num_batches_tracked_are_accepted():
    network, _ = _reference("resnet18")
    state = {key: value.numpy() for key, value in network.state_dict().items()}
    assert "bn1.num_batches_tracked" in state
    variables = from_torchvision(state, "resnet18")
    np.testing.assert_array_equal(
        variables["batch_stats"]["layer2_0"]["downsample_bn"]["var"], state["layer2.0.downsample.1.running_var"]
    )
    np.testing.assert_array_equal(variables["params"]["fc"]["kernel"], state["fc.weight"].T)
    np.testing.assert_array_equal(variables["params"]["conv1"]["kernel"], state["conv1.weight"].transpose(2, 3, 1, 0))


def test_missing_key_is_an_error_naming_it():
    state = dict(_reference("resnet18")[0].state_dict())
    del state["layer3.1.bn2.running_var"]
    with pytest.raises(ValueError, match=r"1 missing keys: layer3.1.bn2.running_var\n"):
        from_torchvision(state, "resnet18")


def test_unknown_key_is_an_error_naming_it():
    state = dict(_reference("resnet18")[0].state_dict())
    state["layer5.0.conv1.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"1 unexpected keys \(not part of 'resnet18'\): layer5.0.conv1.weight\n"):
        from_torchvision(state, "resnet18")


def test_wrong_architecture_is_an_error_naming_the_keys():
    state = _reference("resnet18")[0].state_dict()
    with pytest.raises(ValueError, match=r"(?s)missing keys: .*layer1.0.conv3.weight.*shape mismatches: fc.weight"):
        from_torchvision(state, "resnet50")


def test_shape_mismatch_is_an_error_naming_the_key():
    state = dict(_reference("resnet18")[0].state_dict())
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(ValueError, match=r"1 shape mismatches: layer1.0.conv1.weight \(64, 64, 1, 1\)"):
        from_torchvision(state, "resnet18")


def test_num_classes_follows_the_checkpoint_head():
    variables = from_torchvision(_reference("resnet18", num_classes=37)[0].state_dict(), "resnet18")
    assert variables["params"]["fc"]["kernel"].shape == (512, 37)


@pytest.mark.slow
@pytest.mark.extended  # a .pth through a run: test_timm's run-path tests; lr_multipliers: test_optim
def test_init_from_a_pth_with_lr_multipliers_through_the_command_line(tmp_path):
    """A torchvision-layout .pth into a run whose stem learns at rate x0 and layer3 at x0.5: after one step
    (momentum starts empty), layer3 has moved exactly half as far as in the same run without multipliers."""
    import subprocess
    import sys
    from pathlib import Path

    from configs import default
    from resnet_jax.train import checkpoint, loop

    torch.manual_seed(0)
    state_dict = torch_cifar.he2016(20, "A").state_dict()
    torch.save(state_dict, tmp_path / "resnet20.pth")
    command = [
        sys.executable,
        "-m",
        "resnet_jax.main",
        "--config=configs/default.py",
        f"--workdir={tmp_path / 'run'}",
        "--config.image_size=8",
        "--config.num_train_steps=1",
        "--config.synthetic.num_eval_examples=32",
        f"--config.init_from={tmp_path / 'resnet20.pth'}",
        "--config.lr_multipliers=stem=0,layer3=0.5",
    ]
    repository = Path(__file__).resolve().parents[1]
    completed = subprocess.run(command, cwd=repository, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "init_from: loaded" in completed.stderr and "re-initialised none" in completed.stderr
    assert "stem: learning rate x0 (" in completed.stderr and "layer3: learning rate x0.5 (" in completed.stderr
    loaded = from_torchvision(state_dict, "cifar_resnet20")["params"]
    trained = checkpoint.load_variables(tmp_path / "run")["params"]
    for module in ("conv1", "bn1"):  # the stem did not move
        for name, value in loaded[module].items():
            np.testing.assert_array_equal(trained[module][name], value, err_msg=f"{module}/{name}")
    assert not np.array_equal(trained["layer1_0"]["conv1"]["kernel"], loaded["layer1_0"]["conv1"]["kernel"])
    config = default.get_config()  # the same run, in-process, without multipliers
    config.update(dict(image_size=8, num_train_steps=1, init_from=str(tmp_path / "resnet20.pth")))
    config.synthetic.num_eval_examples = 32
    loop.train_and_evaluate(config, tmp_path / "plain")
    plain = checkpoint.load_variables(tmp_path / "plain")["params"]
    for module in ("layer2_0", "layer3_0", "layer3_2"):
        for name, value in loaded[module]["conv1"].items():
            moved, moved_plain = trained[module]["conv1"][name] - value, plain[module]["conv1"][name] - value
            multiplier = 0.5 if module.startswith("layer3") else 1.0
            scale = np.abs(moved_plain).max()  # float32 rounding of value + step, relative to the step
            np.testing.assert_allclose(moved, multiplier * moved_plain, atol=2e-3 * scale, err_msg=f"{module}/{name}")
