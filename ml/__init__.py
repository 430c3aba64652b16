"""Models, the MLModelManager registry, item-by-item validation, MLTask and MLService."""

from ml.errors import EmptyInput, MlError, ModelNotFound, NoValidData, TooManyItems
from ml.models import AffineModel, MLModel, SimpleMLModel
from ml.registry import MLModelManager, ModelSpec, default_models
from ml.results import Prediction, PredictionResult, predictions_of
from ml.service import MLService
from ml.tasks import MLTask
from ml.validation import check_items, split_csv, split_text

__all__ = [
    "AffineModel",
    "EmptyInput",
    "MLModel",
    "MLModelManager",
    "MLService",
    "MLTask",
    "MlError",
    "ModelNotFound",
    "ModelSpec",
    "NoValidData",
    "Prediction",
    "PredictionResult",
    "SimpleMLModel",
    "TooManyItems",
    "check_items",
    "default_models",
    "predictions_of",
    "split_csv",
    "split_text",
]
