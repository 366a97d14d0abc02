"""The canonical model zoo. See `zoo.py`."""
from shrinkbench.models.zoo import (MODELS, ModelSpec, build_on_meta, create_model,
                                    describe_model, fingerprint, list_models, model_spec,
                                    register_model)

__all__ = ["MODELS", "ModelSpec", "build_on_meta", "create_model", "describe_model",
           "fingerprint", "list_models", "model_spec", "register_model"]
