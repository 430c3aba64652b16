"""Models (code and ONNX), the MLModelManager registry and manifests, item-by-item and
row-by-row validation, MLTask and MLService."""

from ml.csv_rows import parse_csv
from ml.errors import (
    AmbiguousDecimalComma,
    BadCsv,
    BadCsvHeader,
    EmptyInput,
    ManifestError,
    MlError,
    ModelFailed,
    ModelNotFound,
    NoValidData,
    TooManyItems,
)
from ml.manifest import catalogue, load_manifests
from ml.models import AffineModel, Classified, MLModel, SimpleMLModel, TabularModel, Unpredictable
from ml.outputs import run_model
from ml.registry import MLModelManager, ModelSpec, code_version, default_models
from ml.results import Prediction, PredictionResult, predictions_of
from ml.rows import check_rows, split_text_rows
from ml.schema import SCALAR, Feature, InputSchema
from ml.service import MLService
from ml.tasks import MLTask
from ml.validation import check_items, split_csv, split_text

__all__ = [
    "SCALAR",
    "AffineModel",
    "AmbiguousDecimalComma",
    "BadCsv",
    "BadCsvHeader",
    "Classified",
    "EmptyInput",
    "Feature",
    "InputSchema",
    "MLModel",
    "MLModelManager",
    "MLService",
    "MLTask",
    "ManifestError",
    "MlError",
    "ModelFailed",
    "ModelNotFound",
    "ModelSpec",
    "NoValidData",
    "Prediction",
    "PredictionResult",
    "SimpleMLModel",
    "TabularModel",
    "TooManyItems",
    "Unpredictable",
    "catalogue",
    "check_items",
    "check_rows",
    "code_version",
    "default_models",
    "load_manifests",
    "parse_csv",
    "predictions_of",
    "run_model",
    "split_csv",
    "split_text",
    "split_text_rows",
]
