"""The canonical model zoo. See `zoo.py`."""
from shrinkbench.models.zoo import (MODELS, ModelSpec, build_on_meta, create_model,
                                    describe_model, fingerprint, list_models, model_spec,
                                    register_model)
from shrinkbench.models import cifar_resnet, cifar_vgg, imagenet, lenet  # noqa: F401,E402  (fill MODELS)

__all__ = ["MODELS", "ModelSpec", "build_on_meta", "create_model", "describe_model",
           "fingerprint", "list_models", "model_spec", "register_model"]
