"""Tiny real ONNX files built with onnx.helper, for manifest and runtime tests (no training)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def linear_onnx(path: Path, *, inputs: int, outputs: int = 1, softmax: bool = False,
                sqrt: bool = False, input_type: int = TensorProto.FLOAT,
                batch: int | None = None) -> Path:
    """Y = X · W with W all ones: [n, inputs] → [n, outputs]; softmax for a classifier; sqrt
    makes a row with a negative sum come out NaN (a model failing for one row)."""
    dtype = np.float64 if input_type == TensorProto.DOUBLE else np.float32
    weights = numpy_helper.from_array(np.ones((inputs, outputs), dtype=dtype), "W")
    nodes = [helper.make_node("MatMul", ["X", "W"], ["Z"])]
    last = "Z"
    if softmax:
        nodes.append(helper.make_node("Softmax", [last], ["P"], axis=1))
        last = "P"
    if sqrt:
        nodes.append(helper.make_node("Sqrt", [last], ["S"]))
        last = "S"
    nodes.append(helper.make_node("Identity", [last], ["Y"]))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("X", input_type, [batch, inputs])],
        [helper.make_tensor_value_info("Y", input_type, [None, outputs])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def write_manifest(folder: Path, name: str, *, width: int, kind: str = "regression",
                   labels: list[str] | None = None, artifact: str | None = None,
                   **overrides: Any) -> Path:
    """A manifest for `<name>.onnx` in `folder` with the artifact's true SHA-256."""
    artifact = artifact or f"{name}.onnx"
    target = folder / artifact
    sha256 = hashlib.sha256(target.read_bytes()).hexdigest() if target.is_file() else "0" * 64
    manifest: dict[str, Any] = {
        "id": 7, "name": name, "description": "a tiny test model", "price_per_item_credits": 2,
        "max_items": 100, "kind": kind,
        "features": [{"name": f"x{i}", "type": "number", "minimum": -100, "maximum": 100,
                      "required": True} for i in range(width)],
        "labels": labels or [], "artifact": artifact, "sha256": sha256, **overrides}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path
