"""The canonical model zoo (see `zoo.py`; every entry is declared in `catalog.py`). Importing
this package needs no torch: a model's code is imported when it is built."""
from shrinkbench.vision.models.zoo import (MODELS, Golden, ModelSpec, build_on_meta, count_model, create_model,
                                    describe_model, fingerprint, list_models, model_spec, register_model,
                                    zoo_entry)
from shrinkbench.vision.models import catalog  # noqa: F401,E402  (fill MODELS)

__all__ = ["MODELS", "Golden", "ModelSpec", "build_on_meta", "count_model", "create_model", "describe_model",
           "fingerprint", "list_models", "model_spec", "register_model", "zoo_entry"]
