"""Independent PyTorch networks for the variants, written from their papers (no torchvision, no timm, not
this package): SE-ResNet (Hu et al. 2018), ResNet-D with the ResNet-C stem (He et al. 2019), Res2Net
(Gao et al. 2019), ImageNet pre-activation ResNets (He et al. 2016b), and the CIFAR units of He et al.
2016b's Tables 1 and 2 (activation orders, gates, constant scaling, 1x1 shortcuts).

Module names follow this package's layout (``layer1.0.se.fc1``, ``conv1_0``, ``layer1.0.conv2_0``,
``gate``), so ``resnet_jax.convert.from_torchvision`` maps their weights one to one.
"""

import torch
from torch import nn
from torch.nn import functional


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False)


class SqueezeExcitation(nn.Module):
    """Hu et al. 2018, Fig. 3: global pool, FC (C -> C/r), ReLU, FC (C/r -> C), sigmoid, rescale."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(channels, channels // reduction), nn.Linear(channels // reduction, channels)

    def forward(self, x):
        weights = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * weights[:, :, None, None]


class Bottleneck(nn.Module):
    """The torchvision bottleneck (stride on the 3x3), with an optional SE module on the branch."""

    def __init__(self, inplanes, planes, stride, downsample, se=False, pool=None):
        super().__init__()
        self.conv1, self.bn1 = _conv(inplanes, planes, 1), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3, stride), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = _conv(planes, planes * 4, 1), nn.BatchNorm2d(planes * 4)
        self.se = SqueezeExcitation(planes * 4) if se else None
        self.downsample, self.pool = downsample, pool  # ResNet-D: average pool before the projection

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        shortcut = x if self.pool is None else self.pool(x)
        return torch.relu(out + (shortcut if self.downsample is None else self.downsample(shortcut)))


class Res2NetBottleneck(nn.Module):
    """Gao et al. 2019, Fig. 2: 1x1 to s splits of w; y_1 = K_1(x_1) (x_1 passed on unchanged in the
    paper's figure is the last split here, as in their code), y_i = K_i(x_i + y_(i-1)); the first block of a
    stage convolves each split alone and average-pools the last one."""

    def __init__(self, inplanes, planes, stride, downsample, base_width=26, scale=4):
        super().__init__()
        width = planes * base_width // 64
        self.scale, self.first = scale, downsample is not None
        self.conv1, self.bn1 = _conv(inplanes, width * scale, 1), nn.BatchNorm2d(width * scale)
        for i in range(scale - 1):
            setattr(self, f"conv2_{i}", _conv(width, width, 3, stride))
            setattr(self, f"bn2_{i}", nn.BatchNorm2d(width))
        self.pool = nn.AvgPool2d(3, stride, 1)
        self.conv3, self.bn3 = _conv(width * scale, planes * 4, 1), nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        splits = torch.chunk(torch.relu(self.bn1(self.conv1(x))), self.scale, dim=1)
        outputs = []
        for i in range(self.scale - 1):
            inputs = splits[i] if i == 0 or self.first else splits[i] + outputs[-1]
            outputs.append(torch.relu(getattr(self, f"bn2_{i}")(getattr(self, f"conv2_{i}")(inputs))))
        outputs.append(self.pool(splits[-1]) if self.first else splits[-1])
        out = self.bn3(self.conv3(torch.cat(outputs, dim=1)))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class PreActBlock(nn.Module):
    """He et al. 2016b, Fig. 4(e) on ImageNet: BN-ReLU before each conv; the projection sees the activated
    input; the first unit after the stem (already BN-ReLU-pooled) leaves out its first BN-ReLU."""

    def __init__(self, inplanes, planes, stride, downsample, bottleneck, first):
        super().__init__()
        out, self.first = planes * (4 if bottleneck else 1), first
        widths = [inplanes, planes, planes, out] if bottleneck else [inplanes, planes, out]
        kernels = [1, 3, 1] if bottleneck else [3, 3]
        strided = 2 if bottleneck else 1  # the stride sits on the (first) 3x3
        pairs = zip(widths, widths[1:], strict=False)
        for index, (kernel, (a, b)) in enumerate(zip(kernels, pairs, strict=True), start=1):
            if not (first and index == 1):
                setattr(self, f"bn{index}", nn.BatchNorm2d(a))
            setattr(self, f"conv{index}", _conv(a, b, kernel, stride if index == strided else 1))
        self.count, self.downsample = len(kernels), downsample

    def forward(self, x):
        activated = x if self.first else torch.relu(self.bn1(x))
        out = activated
        for index in range(1, self.count + 1):
            if index > 1:
                out = torch.relu(getattr(self, f"bn{index}")(out))
            out = getattr(self, f"conv{index}")(out)
        return out + (x if self.downsample is None else self.downsample(activated))


class ImageNetNet(nn.Module):
    """Stem, four stages (64, 128, 256, 512 base widths), global pool, fc: the layout all four share."""

    def __init__(self, kind: str, layers, num_classes=1000):
        super().__init__()
        self.kind, self.inplanes = kind, 64
        if kind == "resnet_d":  # ResNet-C: three 3x3 convs (32, 32, 64), the first with stride 2
            self.conv1_0, self.bn1_0 = _conv(3, 32, 3, 2), nn.BatchNorm2d(32)
            self.conv1_1, self.bn1_1 = _conv(32, 32, 3), nn.BatchNorm2d(32)
            self.conv1 = _conv(32, 64, 3)
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            setattr(self, f"layer{stage + 1}", self._stage(planes, count, 1 if stage == 0 else 2))
        if kind.startswith("preact"):
            self.bn_final = nn.BatchNorm2d(self.inplanes)
        self.fc = nn.Linear(self.inplanes, num_classes)

    def _stage(self, planes, count, stride):
        blocks = []
        for index in range(count):
            block_stride = stride if index == 0 else 1
            out = planes * (1 if self.kind == "preact_basic" else 4)
            downsample = None
            if block_stride != 1 or self.inplanes != out:
                projection = [_conv(self.inplanes, out, 1, 1 if self.kind == "resnet_d" else block_stride)]
                if not self.kind.startswith("preact"):
                    projection.append(nn.BatchNorm2d(out))
                downsample = nn.Sequential(*projection)
            blocks.append(self._block(planes, block_stride, downsample, first=not blocks and stride == 1))
            self.inplanes = out
        return nn.Sequential(*blocks)

    def _block(self, planes, stride, downsample, first):
        if self.kind == "res2net":
            return Res2NetBottleneck(self.inplanes, planes, stride, downsample)
        if self.kind.startswith("preact"):
            return PreActBlock(self.inplanes, planes, stride, downsample, self.kind == "preact", first)
        pool = None
        if self.kind == "resnet_d" and stride > 1:
            pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
        return Bottleneck(self.inplanes, planes, stride, downsample, se=self.kind == "se", pool=pool)

    def forward(self, x):
        if self.kind == "resnet_d":
            x = torch.relu(self.bn1_1(self.conv1_1(torch.relu(self.bn1_0(self.conv1_0(x))))))
        x = functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
        if self.kind.startswith("preact"):
            x = torch.relu(self.bn_final(x))
        return self.fc(x.mean(dim=(2, 3)))


IMAGENET_VARIANTS = {
    "se_resnet50": ("se", [3, 4, 6, 3]),
    "se_resnet101": ("se", [3, 4, 23, 3]),
    "resnet50d": ("resnet_d", [3, 4, 6, 3]),
    "res2net50_26w_4s": ("res2net", [3, 4, 6, 3]),
    "res2net101_26w_4s": ("res2net", [3, 4, 23, 3]),
    "preact_resnet18": ("preact_basic", [2, 2, 2, 2]),
    "preact_resnet50": ("preact", [3, 4, 6, 3]),
}


def build(name: str, num_classes: int = 1000) -> ImageNetNet:
    """The reference network for registry name ``name``, with PyTorch's default initialisation."""
    kind, layers = IMAGENET_VARIANTS[name]
    return ImageNetNet(kind, layers, num_classes)


class AblationUnit(nn.Module):
    """A CIFAR basic unit of He et al. 2016b: ``order`` is Fig. 4's (a)-(e); ``gate`` 'exclusive' gives
    g F + (1 - g) h and 'shortcut_only' F + (1 - g) h with g = sigmoid(conv1x1(x) + b); scales multiply
    the shortcut and the branch; the shortcut is option A, or a 1x1 conv on every unit ('C')."""

    def __init__(self, inplanes, planes, stride, order, gate="", shortcut="A", shortcut_scale=1.0, branch_scale=1.0):
        super().__init__()
        self.order, self.gate_kind, self.shortcut = order, gate, shortcut
        self.shortcut_scale, self.branch_scale, self.stride = shortcut_scale, branch_scale, stride
        self.planes = planes
        self.conv1, self.conv2 = _conv(inplanes, planes, 3, stride), _conv(planes, planes, 3)
        self.bn1 = nn.BatchNorm2d(inplanes if order == "full_preactivation" else planes)
        self.bn2 = nn.BatchNorm2d(planes)
        if shortcut == "C":
            self.downsample = nn.Sequential(_conv(inplanes, planes, 1, stride), nn.BatchNorm2d(planes))
        if gate:
            self.gate = nn.Conv2d(inplanes, planes, 1, stride)

    def _branch(self, x):
        order = self.order
        if order == "full_preactivation":
            return self.conv2(torch.relu(self.bn2(self.conv1(torch.relu(self.bn1(x))))))
        if order == "relu_preactivation":
            x = torch.relu(x)
        out = self.conv2(torch.relu(self.bn1(self.conv1(x))))
        if order == "bn_after_addition":
            return out
        out = self.bn2(out)
        return torch.relu(out) if order == "relu_before_addition" else out

    def _identity(self, x):
        if self.shortcut == "C":
            return self.downsample(x)
        if self.stride == 1 and x.shape[1] == self.planes:
            return x
        return functional.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.planes - x.shape[1]))

    def forward(self, x):
        branch, shortcut = self.branch_scale * self._branch(x), self.shortcut_scale * self._identity(x)
        if self.gate_kind:
            g = torch.sigmoid(self.gate(x))
            y = g * branch + (1 - g) * shortcut if self.gate_kind == "exclusive" else branch + (1 - g) * shortcut
        else:
            y = branch + shortcut
        if self.order == "post":
            return torch.relu(y)
        if self.order == "bn_after_addition":
            return torch.relu(self.bn2(y))
        return y
