"""LeNets as used by Han et al. 2015 ("Learning both Weights and Connections"), and their
width-scaled dense variants (every hidden layer's width times `width`, see `scaled_width`),
the "dense small" models that a pruned large one is put against at equal size."""
from collections import OrderedDict

from torch import nn


def scaled_width(n: int, width: float) -> int:
    """A layer of `n` units at width multiplier `width`: max(1, floor(n * width + 0.5))."""
    return max(1, int(n * width + 0.5))


def lenet_300_100(width: float = 1.0) -> nn.Module:
    """MLP 784-300-100-10 with ReLU (hidden widths scaled by `width`)."""
    h1, h2 = scaled_width(300, width), scaled_width(100, width)
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(784, h1)), ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(h1, h2)), ("relu2", nn.ReLU()),
        ("fc3", nn.Linear(h2, 10)),
    ]))


def lenet5_caffe(width: float = 1.0) -> nn.Module:
    """Caffe LeNet-5: conv20 5x5, maxpool, conv50 5x5, maxpool, fc500, ReLU, fc10 (the 20, 50
    and 500 scaled by `width`)."""
    c1, c2, f1 = scaled_width(20, width), scaled_width(50, width), scaled_width(500, width)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, c1, 5)), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(c1, c2, 5)), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(c2 * 16, f1)), ("relu", nn.ReLU()),
        ("fc2", nn.Linear(f1, 10)),
    ]))
