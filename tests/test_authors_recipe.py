"""The authors' released Random Erasing code beside the paper's text (',authors'): their ResNets against a
PyTorch network written from models/fashion/resnet.py's description, their erasing sampler against a
hand-written one, MNIST's normalisation and the constant fill."""

import random

import jax
import numpy as np
import pytest

from configs import fashion_mnist
from resnet_jax import config_schema
from resnet_jax.convert import from_torch_model
from resnet_jax.data.augment import erasing
from resnet_jax.data.augment.normalisation import Normalisation
from resnet_jax.errors import ConfigError
from resnet_jax.fields import value_of
from resnet_jax.models import create_model, profile_model

PAPER = erasing.RandomErasing(probability=1.0)
RELEASED = erasing.RandomErasing(probability=1.0, sampler="authors")
SIDE = 28  # Fashion-MNIST
DRAWS = 20_000
# Two-sample Kolmogorov-Smirnov distance that samples of 20,000 from one distribution exceed with probability
# about 1e-3: c(1e-3) * sqrt(2 / n) = 1.95 * 0.01.
SAME_DISTRIBUTION = 0.0195


def released_rectangle(rng: random.Random, height: int, width: int, settings: erasing.RandomErasing):
    """One rectangle as the released ``transforms.RandomErasing.__call__`` draws it, with Python's ``random``:
    (top, left, height, width), or None where its 100 attempts all fail."""
    low, high = settings.area_range
    r1 = settings.min_aspect_ratio
    for _ in range(100):
        target_area = rng.uniform(low, high) * height * width
        aspect_ratio = rng.uniform(r1, 1 / r1)
        h = int(round((target_area * aspect_ratio) ** 0.5))
        w = int(round((target_area / aspect_ratio) ** 0.5))
        if w < width and h < height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    return None


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    grid = np.union1d(a, b)
    cdf = [np.searchsorted(np.sort(x), grid, side="right") / len(x) for x in (a, b)]
    return float(np.abs(cdf[0] - cdf[1]).max())


def drawn(settings: erasing.RandomErasing) -> dict[str, np.ndarray]:
    rectangles = erasing.draw_rectangles(jax.random.key(0), DRAWS, SIDE, SIDE, settings)
    return {name: np.asarray(values) for name, values in rectangles.items()}


def test_the_released_sampler_draws_rectangles_as_the_released_code_does():
    rng = random.Random(0)
    hand = np.array([released_rectangle(rng, SIDE, SIDE, RELEASED) for _ in range(DRAWS)])
    ours = drawn(RELEASED)
    assert ours["erase"].all()  # 100 attempts at these settings: a miss has probability below 1e-40
    for column, name in enumerate(("top", "left", "height", "width")):
        assert ks_distance(ours[name], hand[:, column]) < SAME_DISTRIBUTION, name
    assert (ours["top"] + ours["height"] <= SIDE).all() and (ours["left"] + ours["width"] <= SIDE).all()
    assert ((ours["height"] < SIDE) & (ours["width"] < SIDE)).all()  # the released test is strict
    # Algorithm 1's rectangles are another distribution: it favours the small sizes that fit more corners.
    paper = drawn(PAPER)
    assert ks_distance(paper["height"] * paper["width"], hand[:, 2] * hand[:, 3]) > 5 * SAME_DISTRIBUTION
    assert (paper["height"] * paper["width"]).mean() < (hand[:, 2] * hand[:, 3]).mean()


def test_an_image_whose_hundred_sizes_all_fail_is_left_intact():
    too_big = erasing.RandomErasing(probability=1.0, area_range=(0.99, 0.999), min_aspect_ratio=0.99, sampler="authors")
    rectangles = erasing.draw_rectangles(jax.random.key(1), 50, SIDE, SIDE, too_big)
    assert not np.asarray(rectangles["erase"]).any()


def test_the_constant_fill_is_the_pixel_that_normalises_to_the_released_value():
    settings = erasing.RandomErasing(probability=1.0, fill="constant", fill_value=0.4914)
    normalisation = Normalisation.from_images(np.zeros((2, SIDE, SIDE, 1), np.uint8), "mnist")
    assert (normalisation.mean.tolist(), normalisation.std.tolist()) == ([0.1307], [0.3081])
    colour = erasing.fill_colour_for(settings, normalisation.mean, normalisation.std)
    fill = erasing.fill_values(jax.random.key(0), (SIDE, SIDE, 1), 1, settings, colour)
    assert np.asarray(fill).tolist() == [72]  # (0.1307 + 0.4914 * 0.3081) * 255 = 71.94, by hand
    assert abs(float(normalisation(np.asarray(fill))[0]) - 0.4914) < 0.5 / 255 / 0.3081


def reference_network(depth: int, num_classes: int = 10):
    """A PyTorch network written from the description of the released models/fashion/resnet.py: a 3x3 stem of 16
    on 1 channel, (depth - 2) / 6 blocks a stage at 16/32/64 planes, basic blocks below depth 44 and bottlenecks
    (x4) from 44, a 1x1 conv + BN shortcut wherever stride or width changes, average pooling, a linear layer."""
    torch = pytest.importorskip("torch", reason="the reference network needs torch: pip install -e '.[torch]'")
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, inplanes: int, planes: int, stride: int, bottleneck: bool):
            super().__init__()
            out = planes * (4 if bottleneck else 1)
            if bottleneck:
                self.conv1, self.bn1 = nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes)
                self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(planes)
                self.conv3, self.bn3 = nn.Conv2d(planes, out, 1, bias=False), nn.BatchNorm2d(out)
                self.convs = [(self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)]
            else:
                self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(planes)
                self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False), nn.BatchNorm2d(planes)
                self.convs = [(self.conv1, self.bn1), (self.conv2, self.bn2)]
            self.downsample = None
            if stride != 1 or inplanes != out:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))

        def forward(self, x):
            out = x
            for index, (conv, bn) in enumerate(self.convs):
                out = bn(conv(out))
                if index < len(self.convs) - 1:
                    out = torch.relu(out)
            return torch.relu(out + (x if self.downsample is None else self.downsample(x)))

    class Network(nn.Module):
        def __init__(self):
            super().__init__()
            bottleneck, blocks = depth >= 44, (depth - 2) // 6
            self.conv1, self.bn1 = nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
            inplanes = 16
            for stage, planes in enumerate((16, 32, 64)):
                layer = []
                for index in range(blocks):
                    layer.append(Block(inplanes, planes, 2 if stage and not index else 1, bottleneck))
                    inplanes = planes * (4 if bottleneck else 1)
                setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
            self.fc = nn.Linear(inplanes, num_classes)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(x.mean(dim=(2, 3)))

    torch.manual_seed(depth)
    network = Network()
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return network.eval()


@pytest.mark.parametrize("depth", [20, 56])
def test_the_released_resnets_compute_what_a_pytorch_network_written_from_their_code_computes(depth):
    torch = pytest.importorskip("torch")
    network = reference_network(depth)
    model = create_model(f"zhong_resnet{depth}", num_classes=10, input_channels=1)
    assert profile_model(model, SIDE, channels=1).params == sum(p.numel() for p in network.parameters())
    variables = from_torch_model(network.state_dict(), model, f"zhong_resnet{depth}")
    images = torch.randn(2, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = network(images).numpy()
    logits = np.asarray(model.apply(variables, images.numpy().transpose(0, 2, 3, 1), train=False))
    np.testing.assert_allclose(logits, expected, atol=1e-4 * np.abs(expected).max())


def test_the_authors_token_sets_the_released_network_erasing_and_normalisation_and_nothing_else():
    paper, authors = fashion_mnist.get_config("resnet56,erasing"), fashion_mnist.get_config("resnet56,erasing,authors")
    config_schema.validate(authors)
    changed = {
        name: value_of(authors, name)
        for name in config_schema.field_names()
        if value_of(authors, name) != value_of(paper, name)
    }
    assert changed == {
        "model": "zhong_resnet56",
        "normalisation": "mnist",
        "random_erasing.sampler": "authors",
        "random_erasing.fill": "constant",
        "random_erasing.fill_value": 0.4914,
    }
    with pytest.raises(ConfigError, match="released Fashion-MNIST ResNets"):
        fashion_mnist.get_config("wrn28_10,authors")
