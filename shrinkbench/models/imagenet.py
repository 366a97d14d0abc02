"""torchvision's ImageNet architectures, exactly as torchvision defines them (random init;
load trained weights from a checkpoint of your own)."""
from __future__ import annotations

from torchvision import models as tv

from shrinkbench.models.zoo import register_model

_ENTRIES = (
    ("imagenet_resnet18", tv.resnet18, ("fc",), "He et al. 2016, torchvision resnet18"),
    ("imagenet_resnet50", tv.resnet50, ("fc",), "He et al. 2016, torchvision resnet50 (v1.5: stride in 3x3)"),
    ("imagenet_vgg16", tv.vgg16, ("classifier.6",), "Simonyan & Zisserman 2015, torchvision vgg16 (no BN)"),
    ("imagenet_alexnet", tv.alexnet, ("classifier.6",), "Krizhevsky 2014 'one weird trick' variant, torchvision alexnet"),
    ("imagenet_mobilenet_v2", tv.mobilenet_v2, ("classifier.1",), "Sandler et al. 2018, torchvision mobilenet_v2"),
)

for _name, _builder, _excluded, _ref in _ENTRIES:
    register_model(
        name=_name, input_shape=(3, 224, 224), num_classes=1000, excluded=_excluded,
        reference=_ref, family="imagenet", description=f"torchvision {_builder.__name__}, weights=None",
    )(lambda b=_builder: b(weights=None, num_classes=1000))
