"""The fp32 ONNX graph of all-MiniLM-L6-v2 (a BERT encoder), built from its safetensors weights with
the `onnx` package and numpy alone: no PyTorch (a 6 GB download) for a 90 MB file.

The graph is what `torch.onnx.export` of Hugging Face's `BertModel` gives (opset 17, eager
attention): inputs `input_ids`, `attention_mask`, `token_type_ids` (int64, [batch, sequence]),
output `last_hidden_state` ([batch, sequence, 384]); the same ops (MatMul + Add for each Linear,
LayerNormalization, GELU as erf, Softmax attention with the additive mask of `finfo(float32).min`),
and node names of the same shape (`/encoder/layer.<i>/output/dense/MatMul`), which the int8
quantisation in fetch_model.py selects by name. Pooling and normalisation stay in the Rust embedder.

    python scripts/minilm_onnx.py <model dir with config.json and model.safetensors> <out.onnx>
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The format is an 8-byte little-endian header length, a JSON header, then raw tensors."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    base = 8 + length
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        tensors[name] = np.frombuffer(data, dtype=DTYPES[meta["dtype"]], count=-1, offset=base + start)[
            : (end - start) // np.dtype(DTYPES[meta["dtype"]]).itemsize
        ].reshape(meta["shape"])
    return tensors


class Graph:
    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.constants: dict[tuple, str] = {}

    def init(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, value, dtype=np.int64) -> str:
        """A small shared constant (shapes, axes, scalars)."""
        array = np.array(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self.constants:
            self.constants[key] = self.init(f"const_{len(self.constants)}", array)
        return self.constants[key]

    def op(self, op_type: str, inputs: list[str], name: str, **attrs) -> str:
        out = f"{name}_output_0"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        return out

    def linear(self, x: str, prefix: str, scope: str) -> str:
        """torch.nn.Linear: x @ W^T + b, the weight stored transposed as the MatMul's operand."""
        w = self.init(f"{prefix}.weight.T", self.weights[f"{prefix}.weight"].T)
        b = self.init(f"{prefix}.bias", self.weights[f"{prefix}.bias"])
        return self.op("Add", [self.op("MatMul", [x, w], f"{scope}/MatMul"), b], f"{scope}/Add")

    def layer_norm(self, x: str, prefix: str, scope: str, eps: float) -> str:
        scale = self.init(f"{prefix}.weight", self.weights[f"{prefix}.weight"])
        bias = self.init(f"{prefix}.bias", self.weights[f"{prefix}.bias"])
        return self.op("LayerNormalization", [x, scale, bias], f"{scope}/LayerNormalization", axis=-1, epsilon=eps)


def build(model_dir: Path) -> onnx.ModelProto:
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "bert" and config["hidden_act"] == "gelu", config
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head_dim = hidden // heads
    eps = config["layer_norm_eps"]
    weights = read_safetensors(model_dir / "model.safetensors")
    # Sentence-transformers saves the bare encoder; a full BertModel checkpoint prefixes `bert.`.
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    g = Graph(weights)

    # Embeddings: word + position (0..sequence) + token type, then LayerNorm.
    words = g.op("Gather", [g.init("embeddings.word_embeddings.weight", weights["embeddings.word_embeddings.weight"]), "input_ids"],
                 "/embeddings/word_embeddings/Gather")
    types = g.op("Gather", [g.init("embeddings.token_type_embeddings.weight", weights["embeddings.token_type_embeddings.weight"]),
                            "token_type_ids"], "/embeddings/token_type_embeddings/Gather")
    seq_len = g.op("Gather", [g.op("Shape", ["input_ids"], "/embeddings/Shape"), g.const([1])], "/embeddings/Gather_seq")
    positions = g.op("Slice", [g.init("embeddings.position_embeddings.weight", weights["embeddings.position_embeddings.weight"]),
                               g.const([0]), seq_len, g.const([0])], "/embeddings/position_embeddings/Slice")
    x = g.op("Add", [g.op("Add", [words, types], "/embeddings/Add"), positions], "/embeddings/Add_1")
    x = g.layer_norm(x, "embeddings.LayerNorm", "/embeddings/LayerNorm", eps)

    # The additive mask: 0 where attended, finfo(float32).min where padded; [batch, 1, 1, sequence].
    mask = g.op("Cast", [g.op("Unsqueeze", ["attention_mask", g.const([1, 2])], "/Unsqueeze")], "/Cast", to=TensorProto.FLOAT)
    mask = g.op("Mul", [g.op("Sub", [g.const(1.0, np.float32), mask], "/Sub"), g.const(np.finfo(np.float32).min, np.float32)], "/Mul")

    to_heads = g.const([0, 0, heads, head_dim])
    merged = g.const([0, 0, hidden])
    scale = g.const(np.sqrt(head_dim), np.float32)
    for i in range(config["num_hidden_layers"]):
        p, s = f"encoder.layer.{i}", f"/encoder/layer.{i}"
        q, k, v = (
            g.op("Reshape", [g.linear(x, f"{p}.attention.self.{n}", f"{s}/attention/self/{n}"), to_heads], f"{s}/attention/self/Reshape_{n}")
            for n in ("query", "key", "value")
        )
        q = g.op("Transpose", [q], f"{s}/attention/self/Transpose_q", perm=[0, 2, 1, 3])
        k = g.op("Transpose", [k], f"{s}/attention/self/Transpose_k", perm=[0, 2, 3, 1])
        v = g.op("Transpose", [v], f"{s}/attention/self/Transpose_v", perm=[0, 2, 1, 3])
        scores = g.op("Div", [g.op("MatMul", [q, k], f"{s}/attention/self/MatMul"), scale], f"{s}/attention/self/Div")
        probs = g.op("Softmax", [g.op("Add", [scores, mask], f"{s}/attention/self/Add")], f"{s}/attention/self/Softmax", axis=-1)
        context = g.op("MatMul", [probs, v], f"{s}/attention/self/MatMul_1")
        context = g.op("Transpose", [context], f"{s}/attention/self/Transpose_ctx", perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, merged], f"{s}/attention/self/Reshape_ctx")
        attended = g.op("Add", [g.linear(context, f"{p}.attention.output.dense", f"{s}/attention/output/dense"), x], f"{s}/attention/output/Add")
        x = g.layer_norm(attended, f"{p}.attention.output.LayerNorm", f"{s}/attention/output/LayerNorm", eps)

        inner = g.linear(x, f"{p}.intermediate.dense", f"{s}/intermediate/dense")
        # GELU, exact: 0.5 * x * (1 + erf(x / sqrt(2))).
        erf = g.op("Erf", [g.op("Div", [inner, g.const(np.sqrt(2.0), np.float32)], f"{s}/intermediate/Div")], f"{s}/intermediate/Erf")
        gelu = g.op("Mul", [g.op("Mul", [inner, g.op("Add", [erf, g.const(1.0, np.float32)], f"{s}/intermediate/Add")], f"{s}/intermediate/Mul"),
                            g.const(0.5, np.float32)], f"{s}/intermediate/Mul_1")
        out = g.op("Add", [g.linear(gelu, f"{p}.output.dense", f"{s}/output/dense"), x], f"{s}/output/Add")
        x = g.layer_norm(out, f"{p}.output.LayerNorm", f"{s}/output/LayerNorm", eps)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="/Identity_out"))
    dims = ["batch_size", "sequence_length"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in ("input_ids", "attention_mask", "token_type_ids")]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*dims, hidden])
    graph = helper.make_graph(g.nodes, "main_graph", inputs, [output], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="myriad scripts/minilm_onnx.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> int:
    model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    onnx.save(build(model_dir), str(out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
