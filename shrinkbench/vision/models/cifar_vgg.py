"""The CIFAR VGG-16 with batch norm and dropout used by the original ShrinkBench.

It follows Zagoruyko's "92.45% on CIFAR-10 in Torch" vgg_bn_drop: thirteen 3x3 conv + BN
(eps 1e-3) + ReLU layers (64,64 | 128,128 | 256x3 | 512x3 | 512x3) with dropout 0.3/0.4
between convolutions, five 2x2 max-pools (ceil mode), then dropout 0.5, fc 512, BN, ReLU,
dropout 0.5 and the classifier. With ceil-mode pooling the same network accepts 1x28x28
inputs (28 -> 14 -> 7 -> 4 -> 2 -> 1), registered with the suffix `_1x28x28`.
"""
from __future__ import annotations

from torch import nn


# (out_channels, dropout after it or None); "M" = max-pool
_LAYOUT = [(64, 0.3), (64, None), "M", (128, 0.4), (128, None), "M",
           (256, 0.4), (256, 0.4), (256, None), "M", (512, 0.4), (512, 0.4), (512, None), "M",
           (512, 0.4), (512, 0.4), (512, None), "M"]


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_planes: int, planes: int):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, planes, 3, padding=1)
        self.bn = nn.BatchNorm2d(planes, eps=1e-3)
        self.relu = nn.ReLU(inplace=True)


class VGGBnDrop(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        layers, planes = [], in_channels
        for item in _LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
                continue
            out, drop = item
            layers.append(ConvBNReLU(planes, out))
            if drop is not None:
                layers.append(nn.Dropout(drop))
            planes = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(512, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
