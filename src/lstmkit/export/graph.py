"""A small ONNX graph builder: nodes and initializers with unique names, for the graphs lstmkit writes
by hand (the LSTM layers of :mod:`lstmkit.export.recurrence`), and the splice that puts them in place
of a placeholder node of a graph torch exported."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 17  # LayerNormalization (17) is the newest operator the graphs use


class Builder:
    """Collects nodes and initializers; every name it makes starts with ``prefix``.

    ``op("MatMul", a, b)`` appends a node and returns its output name (a list of names when
    ``outputs > 1``); ``const(array)`` adds an initializer (float arrays as float32 unless given a dtype)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}/{hint}_{self._count}"

    def const(self, value: Any, hint: str = "c", dtype: Any = None) -> str:
        arr = np.asarray(value)
        if dtype is not None:
            arr = arr.astype(dtype)
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        elif arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(arr.copy(order="C"), name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, out: list[str] | None = None, **attrs: Any) -> Any:
        names = out if out is not None else [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=self.name(op_type), **attrs))
        return names[0] if len(names) == 1 else names

    def subgraph(
        self, nodes: list[onnx.NodeProto], inputs: list[str], outputs: list[str], name: str
    ) -> onnx.GraphProto:
        """A body graph (Scan/Loop) of ``nodes``; its inputs and outputs untyped (shapes come from the outer graph)."""
        vi = lambda n: helper.make_empty_tensor_value_info(n)  # noqa: E731
        return helper.make_graph(nodes, name, [vi(n) for n in inputs], [vi(n) for n in outputs])


def splice(model: onnx.ModelProto, index: int, b: Builder) -> None:
    """Replace node ``index`` of ``model``'s main graph by ``b``'s nodes (which must produce the
    placeholder's output names) and add ``b``'s initializers."""
    g = model.graph
    del g.node[index]
    for k, node in enumerate(b.nodes):
        g.node.insert(index + k, node)
    g.initializer.extend(b.initializers)


def finish(model: onnx.ModelProto, drop_domains: tuple[str, ...] = ("lstmkit",)) -> onnx.ModelProto:
    """Drop the placeholder domains from the opset imports and check the model."""
    keep = [o for o in model.opset_import if o.domain not in drop_domains]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    onnx.checker.check_model(model)
    return model
