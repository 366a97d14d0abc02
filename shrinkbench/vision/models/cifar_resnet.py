"""CIFAR ResNets.

`cifar_resnet{20,32,44,56,110}`: He et al. 2016, section 4.2 — a 3x3 conv with 16 filters,
three stages of n basic blocks with 16/32/64 filters (n = (depth-2)/6), global average
pooling and a fully connected layer. Shortcuts are option A: identity, and where the shape
changes, stride-2 subsampling with the new channels zero-padded (no parameters).

`cifar_resnet18`: the ImageNet ResNet-18 block layout (64-128-256-512, two basic blocks per
stage, 1x1-conv projection shortcuts) with a 3x3 stride-1 stem and no max-pool, as used by
many recent pruning papers for CIFAR. It is NOT torchvision's resnet18.

Every family is also registered for 1x28x28 inputs (suffix `_1x28x28`) so that it runs on
(Fashion-)MNIST: only the first convolution's input channels change.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PadShortcut(nn.Module):
    """Option A shortcut: x[:, :, ::s, ::s], zero-padded with new channels (no parameters)."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.stride = stride
        self.extra = planes - in_planes

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        half = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, half, self.extra - half))


class IndexShortcut(nn.Module):
    """An option-A shortcut after channel pruning: x[:, :, ::s, ::s] written into output
    channels `index` of `out_channels` (the others zero). `PadShortcut` is the case
    index = range(pad, pad + C_in)."""

    def __init__(self, stride: int, out_channels: int, index: tuple[int, ...]):
        super().__init__()
        self.stride = stride
        self.out_channels = out_channels
        self.index = tuple(int(i) for i in index)
        self.register_buffer("positions", torch.tensor(self.index, dtype=torch.long), persistent=False)

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        out = x.new_zeros((x.shape[0], self.out_channels, *x.shape[2:]))
        return out.index_copy(1, self.positions.to(x.device), x)


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride == 1 and in_planes == planes:
            self.shortcut = nn.Identity()
        elif shortcut == "A":
            self.shortcut = PadShortcut(in_planes, planes, stride)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stem conv -> stages of BasicBlocks -> global average pool -> fc."""

    def __init__(self, blocks_per_stage: tuple[int, ...], widths: tuple[int, ...], shortcut: str,
                 in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, in_planes = [], widths[0]
        for i, (n, planes) in enumerate(zip(blocks_per_stage, widths)):
            stride = 1 if i == 0 else 2
            stage = []
            for b in range(n):
                stage.append(BasicBlock(in_planes, planes, stride if b == 0 else 1, shortcut))
                in_planes = planes
            layers.append(nn.Sequential(*stage))
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.layers(x))
        return self.fc(x.flatten(1))


def option_a(depth: int, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> CifarResNet:
    """ResNet-`depth` (depth = 6n + 2) with option-A shortcuts; `width` scales 16/32/64."""
    from shrinkbench.vision.models.lenet import scaled_width

    n = (depth - 2) // 6
    widths = tuple(scaled_width(w, width) for w in (16, 32, 64))
    return CifarResNet((n, n, n), widths, "A", in_channels=in_channels, num_classes=num_classes)


def resnet18(in_channels: int = 3, num_classes: int = 10) -> CifarResNet:
    """The ResNet-18 layout with a 3x3 stem and 1x1 projection shortcuts."""
    return CifarResNet((2, 2, 2, 2), (64, 128, 256, 512), "B", in_channels=in_channels, num_classes=num_classes)
