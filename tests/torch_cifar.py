"""Independent PyTorch versions of the CIFAR-family networks, used as parity references.

Written from the papers, not from this package, and without importing it:
- He et al. 2016 Sec. 4.2: a 3x3 stem with 16 filters, then 3 stages of n basic blocks with 16/32/64
  filters. Option A shortcuts subsample and append zero channels (as in the original Torch code);
  the plain nets have no shortcut at all.
- Zagoruyko & Komodakis 2016: pre-activation basic blocks (BN-ReLU-conv, dropout between the two
  convolutions), widths 16k/32k/64k, a 1x1 projection of the pre-activated input whenever the
  shape changes, and a final BN-ReLU.
- Xie et al. 2017 Sec. 5.3: ResNeXt-29, a 64-filter 3x3 stem, 3 stages of 3 bottlenecks whose
  grouped 3x3 carries the stride, outputs 256/512/1024, projection shortcuts.

Module names follow torchvision's pattern (``layer2.0.downsample.0``) plus ``bn_final``.
"""

import torch.nn.functional as F
from torch import nn


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False)


class PostActivationBasic(nn.Module):
    """conv-BN-ReLU-conv-BN, plus an option A shortcut (or none), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1, self.bn1 = _conv(in_channels, out_channels, 3, stride), nn.BatchNorm2d(out_channels)
        self.conv2, self.bn2 = _conv(out_channels, out_channels, 3), nn.BatchNorm2d(out_channels)
        self.stride, self.extra_channels, self.shortcut = stride, out_channels - in_channels, shortcut

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.shortcut == "A":
            identity = x[:, :, :: self.stride, :: self.stride]
            out = out + F.pad(identity, (0, 0, 0, 0, 0, self.extra_channels))
        return F.relu(out)


class PreActivationBasic(nn.Module):
    """BN-ReLU-conv-BN-ReLU-conv with a projection of the pre-activated input on a shape change."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(in_channels), _conv(in_channels, out_channels, 3, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(out_channels), _conv(out_channels, out_channels, 3)
        self.dropout = nn.Dropout(dropout)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(_conv(in_channels, out_channels, 1, stride))

    def forward(self, x):
        activated = F.relu(self.bn1(x))
        out = self.conv2(self.dropout(F.relu(self.bn2(self.conv1(activated)))))
        return out + (x if self.downsample is None else self.downsample(activated))


class GroupedBottleneck(nn.Module):
    """1x1-BN-ReLU, grouped 3x3 (stride)-BN-ReLU, 1x1-BN, plus shortcut, then ReLU."""

    def __init__(self, in_channels: int, inner: int, out_channels: int, stride: int, groups: int):
        super().__init__()
        self.conv1, self.bn1 = _conv(in_channels, inner, 1), nn.BatchNorm2d(inner)
        self.conv2, self.bn2 = _conv(inner, inner, 3, stride, groups), nn.BatchNorm2d(inner)
        self.conv3, self.bn3 = _conv(inner, out_channels, 1), nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(_conv(in_channels, out_channels, 1, stride), nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class CifarNet(nn.Module):
    """A 3-stage CIFAR network: stem, ``layer1..3`` of blocks, optional final BN-ReLU, pool, fc."""

    def __init__(self, stem_width: int, stages: list[list[nn.Module]], num_classes: int, preactivation: bool):
        super().__init__()
        self.conv1 = _conv(3, stem_width, 3)
        self.bn1 = None if preactivation else nn.BatchNorm2d(stem_width)
        for index, blocks in enumerate(stages, start=1):
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
        out_channels = _out_channels(stages[-1][-1])
        self.bn_final = nn.BatchNorm2d(out_channels) if preactivation else None
        self.fc = nn.Linear(out_channels, num_classes)

    def forward(self, x):
        """Return a dict of the stem output, each stage's output and the logits."""
        out = self.conv1(x)
        if self.bn1 is not None:
            out = F.relu(self.bn1(out))
        features = {"stem": out}
        for stage in ("layer1", "layer2", "layer3"):
            out = getattr(self, stage)(out)
            features[stage] = out
        if self.bn_final is not None:
            out = F.relu(self.bn_final(out))
        features["logits"] = self.fc(out.mean(dim=(2, 3)))
        return features


def _out_channels(block: nn.Module) -> int:
    last = block.conv3 if hasattr(block, "conv3") else block.conv2
    return last.out_channels


def _stages(make_block, in_channels: int, blocks_per_stage: int) -> list[list[nn.Module]]:
    """Three stages of blocks; the first block of stages 2 and 3 has stride 2."""
    stages = []
    for stage in range(3):
        blocks = []
        for position in range(blocks_per_stage):
            block = make_block(in_channels, stage, 2 if stage > 0 and position == 0 else 1)
            in_channels = _out_channels(block)
            blocks.append(block)
        stages.append(blocks)
    return stages


def he2016(depth: int, shortcut: str, num_classes: int = 10) -> CifarNet:
    """He et al.'s CIFAR ResNet-depth (``shortcut='A'``) or plain net (``shortcut='none'``)."""

    def block(in_channels, stage, stride):
        return PostActivationBasic(in_channels, 16 * 2**stage, stride, shortcut)

    return CifarNet(16, _stages(block, 16, (depth - 2) // 6), num_classes, preactivation=False)


def wide_resnet(depth: int, widen: int, dropout: float = 0.0, num_classes: int = 10) -> CifarNet:
    """Zagoruyko & Komodakis's WRN-depth-widen."""

    def block(in_channels, stage, stride):
        return PreActivationBasic(in_channels, 16 * 2**stage * widen, stride, dropout)

    return CifarNet(16, _stages(block, 16, (depth - 4) // 6), num_classes, preactivation=True)


def resnext29(cardinality: int, group_width: int, num_classes: int = 10) -> CifarNet:
    """Xie et al.'s ResNeXt-29 (cardinality x group_width d): inner width and output double per stage."""

    def block(in_channels, stage, stride):
        inner = cardinality * group_width * 2**stage
        return GroupedBottleneck(in_channels, inner, 256 * 2**stage, stride, cardinality)

    return CifarNet(64, _stages(block, 64, 3), num_classes, preactivation=False)
