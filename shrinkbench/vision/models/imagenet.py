"""torchvision's ImageNet architectures, exactly as torchvision defines them (random init;
load trained weights from a checkpoint of your own). torchvision is imported only here, when
one of them is built."""
from __future__ import annotations


def torchvision_model(builder: str, num_classes: int = 1000):
    """`torchvision.models.<builder>(weights=None, num_classes=num_classes)`."""
    from torchvision import models

    return getattr(models, builder)(weights=None, num_classes=num_classes)
