"""Export a static sub-network to ONNX for the serving runtime (onnxruntime-node).

Graph contract (docs/zoo-contract.md): one input ``input`` of shape ``[batch, channels, size, size]``
(float32, NCHW, dynamic batch), one output ``logits`` of shape ``[batch, classes]``; ``size`` is the
data contract's crop and the graph resizes it to the network's own resolution (bicubic) when they
differ, exactly as the reference evaluates. BatchNorm is folded into the convs beforehand (see
`bn_folding`) and the result is verified: `onnx.checker`, no BatchNormalization node left, and
the declared input/output names and shapes.

The TorchScript-based exporter is used on every PyTorch version (``dynamo=False`` where that
argument exists, i.e. PyTorch >= 2.5, whose default may become the dynamo exporter).
"""

from __future__ import annotations

import inspect
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
import torch.nn as nn

from .bn_folding import fold_batchnorm

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17
MIN_OPSET = 17


@dataclass(frozen=True)
class OnnxExport:
    """What `export_onnx` wrote."""

    path: Path
    opset: int
    folded_batchnorms: int
    num_classes: int
    node_types: tuple[str, ...]


def _exporter_kwargs() -> dict[str, object]:
    """Version guard: pin the TorchScript exporter where PyTorch offers a choice."""
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        return {"dynamo": False}
    return {}


def _dim_values(value_info: onnx.ValueInfoProto) -> list[int | str]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in dims]


def verify_onnx_model(model: onnx.ModelProto, channels: int, size: int, num_classes: int) -> tuple[str, ...]:
    """Check an exported graph against the contract; returns the sorted set of node op types.

    Raises:
        ValueError: naming the first violated property.
    """
    onnx.checker.check_model(model)
    graph = model.graph
    node_types = tuple(sorted({node.op_type for node in graph.node}))
    if "BatchNormalization" in node_types:
        raise ValueError("exported graph still contains BatchNormalization nodes")
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if [i.name for i in inputs] != [INPUT_NAME]:
        raise ValueError(f"graph inputs must be ['{INPUT_NAME}'], got {[i.name for i in inputs]}")
    if [o.name for o in graph.output] != [OUTPUT_NAME]:
        raise ValueError(f"graph outputs must be ['{OUTPUT_NAME}'], got {[o.name for o in graph.output]}")
    in_dims, out_dims = _dim_values(inputs[0]), _dim_values(graph.output[0])
    if len(in_dims) != 4 or not isinstance(in_dims[0], str) or in_dims[1:] != [channels, size, size]:
        raise ValueError(f"input shape must be [batch, {channels}, {size}, {size}], got {in_dims}")
    if len(out_dims) != 2 or out_dims[0] != in_dims[0] or out_dims[1] != num_classes:
        raise ValueError(f"output shape must be [{in_dims[0]}, {num_classes}], got {out_dims}")
    if inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ValueError("input must be float32")
    return node_types


def export_onnx(
    model: nn.Module,
    path: Path,
    *,
    channels: int,
    size: int,
    opset: int = DEFAULT_OPSET,
    probe: torch.Tensor | None = None,
) -> OnnxExport:
    """Fold BN, export ``model`` to ``path`` and verify the written graph.

    Args:
        model: a static network in eval mode (calibrated BN statistics), on any device.
        path: the ``.onnx`` file to write (parent directories are created).
        channels: input channels of the data contract.
        size: the crop size fed to the graph (the data contract's ``input_size``).
        opset: ONNX opset, at least 17.
        probe: a ``[N, channels, size, size]`` batch used to find and verify BN folding
            (default: a fixed pseudo-random batch of 2).
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    if probe is None:
        probe = torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(0))
    folded, num_folded = fold_batchnorm(model, probe)
    num_classes = int(folded(probe[:1]).shape[1])
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The exporter warns about traced shape arithmetic and constant folding; the graph is
        # verified below instead.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            folded,
            probe,
            buffer,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            training=torch.onnx.TrainingMode.EVAL,
            **_exporter_kwargs(),
        )
    onnx_model = onnx.load_from_string(buffer.getvalue())
    node_types = verify_onnx_model(onnx_model, channels, size, num_classes)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)
    return OnnxExport(
        path=path, opset=opset, folded_batchnorms=num_folded, num_classes=num_classes, node_types=node_types
    )
