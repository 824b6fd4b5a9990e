"""Models, as keras.models: Model (the core and the functional API: minicnn/model.py),
Sequential (minicnn/sequential.py), load_model and model_from_json (minicnn/saving.py)."""
from minicnn.model import Model
from minicnn.model_layer import ModelLayer
from minicnn.saving import load_model, model_from_json
from minicnn.sequential import Sequential
from minicnn.training import INFERENCE_CHUNK  # noqa: F401  (for tests and readers)

__all__ = ["Model", "ModelLayer", "Sequential", "load_model", "model_from_json"]
