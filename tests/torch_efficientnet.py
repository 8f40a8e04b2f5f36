"""An independent PyTorch EfficientNet (eval-mode forward only), used as the parity reference.

Written from Tan & Le 2019 (Table 1, Sec. 4) and the reference implementation's published rules
(round_filters, ceil of depth x repeats, SE on the unit's input width, swish everywhere but the
projection); it imports neither timm, torchvision nor this package. Module names are timm's, so the
state_dict keys are ``efficientnet_b*``'s. ``tf_same=True`` pads as TensorFlow's SAME (the reference),
False pads k // 2 on each side (timm's ``efficientnet_b*``); ``bn_eps`` is 1e-3 (TF) or 1e-5 (PyTorch).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

# (expand ratio, kernel, stride, output channels, repeats) per stage of B0, Tan & Le 2019 Table 1.
B0_STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
             (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]  # fmt: skip
# name -> (width, depth) coefficients, Sec. 4 as released.
COEFFICIENTS = {
    "efficientnet_b0": (1.0, 1.0),
    "efficientnet_b1": (1.0, 1.1),
    "efficientnet_b2": (1.1, 1.2),
    "efficientnet_b3": (1.2, 1.4),
    "efficientnet_b4": (1.4, 1.8),
    "efficientnet_b5": (1.6, 2.2),
    "efficientnet_b6": (1.8, 2.6),
    "efficientnet_b7": (2.0, 3.1),
}


def scaled_width(channels, width):
    """Multiply by ``width``, snap to the nearest multiple of 8 (at least 8), add 8 if that lost over 10%."""
    target = channels * width
    snapped = max(8, 8 * int((target + 4) // 8))
    return snapped + 8 if snapped < 0.9 * target else snapped


class Conv(nn.Conv2d):
    """A Conv2d whose padding is TensorFlow's SAME (computed from the input) or symmetric k // 2."""

    def __init__(self, cin, cout, k, stride=1, groups=1, bias=False, tf_same=True):
        super().__init__(cin, cout, k, stride, 0 if tf_same else k // 2, groups=groups, bias=bias)
        self.tf_same = tf_same

    def forward(self, x):
        if self.tf_same:
            pads = []
            for size in (x.shape[3], x.shape[2]):  # F.pad takes the last axis first
                total = max((math.ceil(size / self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


class SqueezeExcite(nn.Module):
    def __init__(self, channels, reduced, tf_same):
        super().__init__()
        self.conv_reduce = Conv(channels, reduced, 1, bias=True, tf_same=tf_same)
        self.conv_expand = Conv(reduced, channels, 1, bias=True, tf_same=tf_same)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.conv_expand(F.silu(self.conv_reduce(s))))


class DepthwiseSeparable(nn.Module):
    """Expansion 1: depthwise-BN-swish, SE, pointwise-BN (timm's DepthwiseSeparableConv names)."""

    def __init__(self, cin, cout, k, stride, tf_same, eps):
        super().__init__()
        self.conv_dw = Conv(cin, cin, k, stride, groups=cin, tf_same=tf_same)
        self.bn1 = nn.BatchNorm2d(cin, eps=eps)
        self.se = SqueezeExcite(cin, max(1, cin // 4), tf_same)
        self.conv_pw = Conv(cin, cout, 1, tf_same=tf_same)
        self.bn2 = nn.BatchNorm2d(cout, eps=eps)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = self.bn2(self.conv_pw(self.se(F.silu(self.bn1(self.conv_dw(x))))))
        return x + y if self.skip else y


class InvertedResidual(nn.Module):
    """Expansion e: pointwise expand-BN-swish, depthwise-BN-swish, SE, pointwise project-BN."""

    def __init__(self, cin, cout, k, stride, expand, tf_same, eps):
        super().__init__()
        mid = cin * expand
        self.conv_pw = Conv(cin, mid, 1, tf_same=tf_same)
        self.bn1 = nn.BatchNorm2d(mid, eps=eps)
        self.conv_dw = Conv(mid, mid, k, stride, groups=mid, tf_same=tf_same)
        self.bn2 = nn.BatchNorm2d(mid, eps=eps)
        self.se = SqueezeExcite(mid, max(1, cin // 4), tf_same)
        self.conv_pwl = Conv(mid, cout, 1, tf_same=tf_same)
        self.bn3 = nn.BatchNorm2d(cout, eps=eps)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = F.silu(self.bn1(self.conv_pw(x)))
        y = F.silu(self.bn2(self.conv_dw(y)))
        y = self.bn3(self.conv_pwl(self.se(y)))
        return x + y if self.skip else y


class TorchEfficientNet(nn.Module):
    def __init__(self, width=1.0, depth=1.0, num_classes=1000, tf_same=True, bn_eps=1e-3):
        super().__init__()
        cin = scaled_width(32, width)
        self.conv_stem = Conv(3, cin, 3, 2, tf_same=tf_same)
        self.bn1 = nn.BatchNorm2d(cin, eps=bn_eps)
        stages = []
        for expand, k, stride, channels, repeats in B0_STAGES:
            cout, units = scaled_width(channels, width), []
            for i in range(math.ceil(depth * repeats)):
                s = stride if i == 0 else 1
                if expand == 1:
                    units.append(DepthwiseSeparable(cin, cout, k, s, tf_same, bn_eps))
                else:
                    units.append(InvertedResidual(cin, cout, k, s, expand, tf_same, bn_eps))
                cin = cout
            stages.append(nn.Sequential(*units))
        self.blocks = nn.Sequential(*stages)
        head = scaled_width(1280, width)
        self.conv_head = Conv(cin, head, 1, tf_same=tf_same)
        self.bn2 = nn.BatchNorm2d(head, eps=bn_eps)
        self.classifier = nn.Linear(head, num_classes)

    def forward(self, x):
        x = F.silu(self.bn1(self.conv_stem(x)))
        x = self.blocks(x)
        x = F.silu(self.bn2(self.conv_head(x)))
        return self.classifier(x.mean(dim=(2, 3)))


def torch_efficientnet(name, **kwargs):
    """The reference model for ``name`` ('efficientnet_b0' ... 'efficientnet_b7')."""
    width, depth = COEFFICIENTS[name]
    return TorchEfficientNet(width, depth, **kwargs)
