"""Store an exported network's weights as float16 inside its ONNX file, computed in float32.

Every float32 weight of at least `MIN_ELEMENTS` values becomes a float16 initializer plus a Cast node back
to float32 under the weight's original name. The file halves (a width-32 editor: 6.8 → 3.4 MB); ONNX
Runtime folds the casts when it creates the session, so inference still runs in float32 at the same speed;
the rounding (a relative 2⁻¹¹) changes an edited 8-bit pixel by at most a level or two. Why it matters:
the bundled models travel with the repository to a lent GPU machine, and the repository and the training
pack must fit in 64 MiB together (docs/TRAINING.md, section 5).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: Smaller weights (biases, norms) stay float32: they save nothing worth a node.
MIN_ELEMENTS = 1024
#: The largest finite float16.
FLOAT16_MAX = 65504.0


def store_weights_as_float16(path: Path) -> int:
    """Rewrite the ONNX file at `path` (atomically) with float16 weights; returns how many were converted.

    A file whose weights are already stored so is left as it is (0)."""
    model = onnx.load(str(path))
    graph = model.graph
    initializers, casts = [], []
    for weight in graph.initializer:
        values = numpy_helper.to_array(weight) if weight.data_type == TensorProto.FLOAT else None
        if values is None or values.size < MIN_ELEMENTS or np.abs(values).max() > FLOAT16_MAX:
            initializers.append(weight)
            continue
        half = numpy_helper.from_array(values.astype(np.float16), f"{weight.name}.float16")
        initializers.append(half)
        casts.append(
            helper.make_node(
                "Cast", [half.name], [weight.name], to=TensorProto.FLOAT, name=f"{weight.name}.to_float32"
            )
        )
    if not casts:
        return 0
    nodes = list(graph.node)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.node[:]
    graph.node.extend(casts + nodes)  # the casts first: the graph stays topologically sorted
    onnx.checker.check_model(model)
    partial = path.with_name(f".{path.name}.partial")
    onnx.save(model, str(partial))
    os.replace(partial, path)
    return len(casts)
