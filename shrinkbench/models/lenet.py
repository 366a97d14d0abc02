"""LeNets as used by Han et al. 2015 ("Learning both Weights and Connections")."""
from collections import OrderedDict

from torch import nn

from shrinkbench.models.zoo import register_model

HAN2015 = ("Han, Pool, Tran, Dally. Learning both Weights and Connections for Efficient "
           "Neural Networks. NeurIPS 2015")


@register_model(input_shape=(1, 28, 28), num_classes=10, excluded=("fc3",), reference=HAN2015,
                family="lenet", description="MLP 784-300-100-10 with ReLU")
def lenet_300_100() -> nn.Module:
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(784, 300)), ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(300, 100)), ("relu2", nn.ReLU()),
        ("fc3", nn.Linear(100, 10)),
    ]))


@register_model(input_shape=(1, 28, 28), num_classes=10, excluded=("fc2",), reference=HAN2015,
                family="lenet",
                description="Caffe LeNet-5: conv20 5x5, maxpool, conv50 5x5, maxpool, fc500, ReLU, fc10")
def lenet5_caffe() -> nn.Module:
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 20, 5)), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(20, 50, 5)), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(800, 500)), ("relu", nn.ReLU()),
        ("fc2", nn.Linear(500, 10)),
    ]))
