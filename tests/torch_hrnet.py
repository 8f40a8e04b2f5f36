"""An independent PyTorch HRNet classification network, the parity reference for ``resnet_jax.models.hrnet``.

Written from Wang et al. 2019 (Sections 3 and 4, the ImageNet head of the HRNet-W*-C models) with timm's
module names, so its state_dict keys are timm's; it imports neither timm nor this package.
"""

import torch
from torch import nn

EXPANSION = 4
HEAD_WIDTHS = (32, 64, 128, 256)
HEAD_FEATURES = 2048


def conv_bn_act(in_width: int, out_width: int, kernel_size: int, stride: int, act: bool, bias: bool = False):
    """Sequential(conv, BN[, ReLU]) with 'same' padding."""
    layers = [
        nn.Conv2d(in_width, out_width, kernel_size, stride, kernel_size // 2, bias=bias),
        nn.BatchNorm2d(out_width),
    ]
    return nn.Sequential(*layers, nn.ReLU()) if act else nn.Sequential(*layers)


class Residual(nn.Module):
    """Basic (two 3x3) or bottleneck (1x1, 3x3, 1x1 x4) block, stride 1, projected shortcut on a width change."""

    def __init__(self, in_width: int, width: int, bottleneck: bool):
        super().__init__()
        shapes = [(1, width), (3, width), (1, width * EXPANSION)] if bottleneck else [(3, width), (3, width)]
        self.depth = len(shapes)
        previous = in_width
        for number, (kernel_size, out_width) in enumerate(shapes, start=1):
            setattr(self, f"conv{number}", nn.Conv2d(previous, out_width, kernel_size, 1, kernel_size // 2, bias=False))
            setattr(self, f"bn{number}", nn.BatchNorm2d(out_width))
            previous = out_width
        self.out_width = previous
        self.downsample = conv_bn_act(in_width, previous, 1, 1, act=False) if in_width != previous else None

    def forward(self, x):
        y = x
        for number in range(1, self.depth + 1):
            y = getattr(self, f"bn{number}")(getattr(self, f"conv{number}")(y))
            if number < self.depth:
                y = torch.relu(y)
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


def exchange_unit(widths: list[int], target: int, source: int) -> nn.Module:
    """What carries branch ``source`` to branch ``target`` in a fusion (paper Fig. 3)."""
    if source == target:
        return nn.Identity()
    if source > target:
        upsample = nn.Upsample(scale_factor=2 ** (source - target), mode="nearest")
        return nn.Sequential(*conv_bn_act(widths[source], widths[target], 1, 1, act=False), upsample)
    hops = target - source
    return nn.Sequential(
        *[
            conv_bn_act(widths[source], widths[target] if hop == hops - 1 else widths[source], 3, 2, hop < hops - 1)
            for hop in range(hops)
        ]
    )


class HighResolutionModule(nn.Module):
    """Parallel multi-resolution convolutions, then repeated multi-resolution fusion."""

    def __init__(self, widths: list[int], blocks: int):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*[Residual(width, width, bottleneck=False) for _ in range(blocks)]) for width in widths
        )
        count = len(widths)
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(exchange_unit(widths, target, source) for source in range(count)) for target in range(count)
        )

    def forward(self, xs):
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        outputs = []
        for row in self.fuse_layers:
            total = row[0](xs[0])
            for unit, x in zip(list(row)[1:], xs[1:], strict=True):
                total = total + unit(x)
            outputs.append(torch.relu(total))
        return outputs


class Transition(nn.ModuleList):
    """New widths for the existing branches (identity where equal) and one new, half-resolution branch."""

    def __init__(self, old: list[int], new: list[int]):
        units = [nn.Identity() if a == b else conv_bn_act(a, b, 3, 1, act=True) for a, b in zip(old, new, strict=False)]
        super().__init__([*units, nn.Sequential(conv_bn_act(old[-1], new[-1], 3, 2, act=True))])

    def forward(self, xs):
        return [unit(x) for unit, x in zip(self, xs, strict=False)] + [self[-1](xs[-1])]


class TorchHRNet(nn.Module):
    """HRNet-W{width}-C: stem, stage 1 of bottlenecks, stages 2-4 of HR modules, the incremental head."""

    def __init__(
        self,
        width: int,
        modules=(1, 4, 3),
        blocks: int = 4,
        stage1_blocks: int = 4,
        stage1_width: int = 64,
        num_classes: int = 1000,
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        stage1_out = stage1_width * EXPANSION
        self.layer1 = nn.Sequential(
            *[Residual(64 if index == 0 else stage1_out, stage1_width, True) for index in range(stage1_blocks)]
        )
        widths = [stage1_out]
        for stage, count in enumerate(modules, start=2):
            new = [width * 2**index for index in range(stage)]
            setattr(self, f"transition{stage - 1}", Transition(widths, new))
            setattr(self, f"stage{stage}", nn.Sequential(*[HighResolutionModule(new, blocks) for _ in range(count)]))
            widths = new
        self.incre_modules = nn.ModuleList(
            nn.Sequential(Residual(width, head, True)) for width, head in zip(widths, HEAD_WIDTHS, strict=True)
        )
        head_out = [head * EXPANSION for head in HEAD_WIDTHS]
        self.downsamp_modules = nn.ModuleList(
            conv_bn_act(a, b, 3, 2, act=True, bias=True) for a, b in zip(head_out, head_out[1:], strict=False)
        )
        self.final_layer = conv_bn_act(head_out[-1], HEAD_FEATURES, 1, 1, act=True, bias=True)
        self.classifier = nn.Linear(HEAD_FEATURES, num_classes)

    def forward(self, images):
        x = torch.relu(self.bn1(self.conv1(images)))
        xs = [self.layer1(torch.relu(self.bn2(self.conv2(x))))]
        for stage in (2, 3, 4):
            xs = getattr(self, f"stage{stage}")(getattr(self, f"transition{stage - 1}")(xs))
        y = self.incre_modules[0](xs[0])
        for incre, down, x in zip(self.incre_modules[1:], self.downsamp_modules, xs[1:], strict=True):
            y = incre(x) + down(y)
        return self.classifier(self.final_layer(y).mean(dim=(2, 3)))
