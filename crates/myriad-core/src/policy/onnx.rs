//! Just enough ONNX protobuf to move an MLP in and out: export as `Gemm`/`Relu` nodes with float
//! initializers; import `Gemm` (either `transB`) or `MatMul` + `Add` chains with `Relu` between.
//! Field numbers follow onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto, ...).

use super::mlp::{Dense, Mlp};
use crate::error::{Error, Result};

const FLOAT: u64 = 1;

// ---- writing -------------------------------------------------------------------------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, ((field as u64) << 3) | wire as u64);
}

fn int(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, 0);
    varint(out, v);
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn message(out: &mut Vec<u8>, field: u32, build: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    build(&mut inner);
    bytes(out, field, &inner);
}

fn tensor(out: &mut Vec<u8>, name: &str, dims: &[usize], data: &[f32]) {
    message(out, 5, |t| {
        for &d in dims {
            int(t, 1, d as u64);
        }
        int(t, 2, FLOAT);
        bytes(t, 8, name.as_bytes());
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes(t, 9, &raw);
    });
}

fn value_info(out: &mut Vec<u8>, field: u32, name: &str, width: usize) {
    message(out, field, |vi| {
        bytes(vi, 1, name.as_bytes());
        message(vi, 2, |ty| {
            message(ty, 1, |tt| {
                int(tt, 1, FLOAT);
                message(tt, 2, |shape| {
                    message(shape, 1, |d| bytes(d, 2, b"batch"));
                    message(shape, 1, |d| int(d, 1, width as u64));
                });
            });
        });
    });
}

fn node(out: &mut Vec<u8>, op: &str, inputs: &[&str], output: &str, trans_b: bool) {
    message(out, 1, |n| {
        for i in inputs {
            bytes(n, 1, i.as_bytes());
        }
        bytes(n, 2, output.as_bytes());
        bytes(n, 3, format!("{op}_{output}").as_bytes());
        bytes(n, 4, op.as_bytes());
        if trans_b {
            message(n, 5, |a| {
                bytes(a, 1, b"transB");
                int(a, 3, 1);
                int(a, 20, 2); // AttributeProto.INT
            });
        }
    });
}

/// An ONNX model (opset 17) computing the MLP's logits: input `state` [batch, in], output
/// `logits` [batch, out].
pub fn export(mlp: &Mlp) -> Vec<u8> {
    let mut model = Vec::new();
    int(&mut model, 1, 8); // ir_version
    bytes(&mut model, 2, b"myriad");
    message(&mut model, 7, |g| {
        let mut x = "state".to_string();
        for i in 0..mlp.layers.len() {
            let (w, b) = (format!("l{i}.weight"), format!("l{i}.bias"));
            let last = i + 1 == mlp.layers.len();
            let y = if last { "logits".to_string() } else { format!("h{i}") };
            node(g, "Gemm", &[&x, &w, &b], &y, true);
            x = y;
            if !last {
                let r = format!("r{i}");
                node(g, "Relu", &[&x], &r, false);
                x = r;
            }
        }
        bytes(g, 2, b"myriad_policy");
        for (i, layer) in mlp.layers.iter().enumerate() {
            tensor(g, &format!("l{i}.weight"), &[layer.outputs, layer.inputs], &layer.weight);
            tensor(g, &format!("l{i}.bias"), &[layer.outputs], &layer.bias);
        }
        value_info(g, 11, "state", mlp.input_dim());
        value_info(g, 12, "logits", mlp.output_dim());
    });
    message(&mut model, 8, |o| {
        bytes(o, 1, b"");
        int(o, 2, 17);
    });
    model
}

// ---- reading -------------------------------------------------------------------------------

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Int(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn next(&mut self) -> Result<Option<(u32, Field<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let k = self.varint()?;
        let (field, wire) = ((k >> 3) as u32, k & 7);
        let value = match wire {
            0 => Field::Int(self.varint()?),
            1 | 5 => {
                self.pos += if wire == 1 { 8 } else { 4 };
                Field::Fixed
            }
            2 => {
                let len = self.varint()? as usize;
                let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len()).ok_or_else(|| bad("truncated field"))?;
                let b = &self.buf[self.pos..end];
                self.pos = end;
                Field::Bytes(b)
            }
            _ => return Err(bad("unsupported wire type")),
        };
        if self.pos > self.buf.len() {
            return Err(bad("truncated field"));
        }
        Ok(Some((field, value)))
    }
}

fn bad(reason: &str) -> Error {
    Error::InvalidModel(format!("not an MLP ONNX file: {reason}"))
}

struct Node {
    op: String,
    inputs: Vec<String>,
    output: String,
    trans_b: bool,
}

fn parse_tensor(buf: &[u8]) -> Result<(String, Vec<usize>, Vec<f32>)> {
    let (mut name, mut dims, mut data, mut dtype) = (String::new(), Vec::new(), Vec::new(), FLOAT);
    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next()? {
        match (f, v) {
            (1, Field::Int(d)) => dims.push(d as usize),
            (1, Field::Bytes(packed)) => {
                let mut pr = Reader::new(packed);
                while pr.pos < packed.len() {
                    dims.push(pr.varint()? as usize);
                }
            }
            (2, Field::Int(t)) => dtype = t,
            (8, Field::Bytes(b)) => name = String::from_utf8_lossy(b).into_owned(),
            (9, Field::Bytes(b)) | (4, Field::Bytes(b)) => {
                data = b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
            }
            _ => {}
        }
    }
    if dtype != FLOAT {
        return Err(bad(&format!("initializer {name} is not float32")));
    }
    if dims.iter().product::<usize>() != data.len() {
        return Err(bad(&format!("initializer {name} has {} values for dims {dims:?}", data.len())));
    }
    Ok((name, dims, data))
}

fn parse_node(buf: &[u8]) -> Result<Node> {
    let mut n = Node { op: String::new(), inputs: Vec::new(), output: String::new(), trans_b: false };
    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next()? {
        match (f, v) {
            (1, Field::Bytes(b)) => n.inputs.push(String::from_utf8_lossy(b).into_owned()),
            (2, Field::Bytes(b)) => n.output = String::from_utf8_lossy(b).into_owned(),
            (4, Field::Bytes(b)) => n.op = String::from_utf8_lossy(b).into_owned(),
            (5, Field::Bytes(attr)) => {
                let (mut name, mut i) = (String::new(), 0u64);
                let mut ar = Reader::new(attr);
                while let Some((af, av)) = ar.next()? {
                    match (af, av) {
                        (1, Field::Bytes(b)) => name = String::from_utf8_lossy(b).into_owned(),
                        (3, Field::Int(v)) => i = v,
                        _ => {}
                    }
                }
                if name == "transB" {
                    n.trans_b = i != 0;
                }
            }
            _ => {}
        }
    }
    Ok(n)
}

/// Reads an MLP from an ONNX file's graph (Gemm or MatMul+Add layers, Relu between).
pub fn import(buf: &[u8]) -> Result<Mlp> {
    let mut graph = None;
    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next()? {
        if let (7, Field::Bytes(g)) = (f, v) {
            graph = Some(g);
        }
    }
    let graph = graph.ok_or_else(|| bad("no graph"))?;
    let (mut nodes, mut tensors) = (Vec::new(), std::collections::HashMap::new());
    let mut r = Reader::new(graph);
    while let Some((f, v)) = r.next()? {
        match (f, v) {
            (1, Field::Bytes(n)) => nodes.push(parse_node(n)?),
            (5, Field::Bytes(t)) => {
                let (name, dims, data) = parse_tensor(t)?;
                tensors.insert(name, (dims, data));
            }
            _ => {}
        }
    }
    let mut layers: Vec<Dense> = Vec::new();
    let mut pending: Option<(usize, usize, Vec<f32>)> = None; // a MatMul waiting for its Add
    for node in &nodes {
        match node.op.as_str() {
            "Gemm" => {
                let (wd, w) = tensors.get(&node.inputs[1]).ok_or_else(|| bad("Gemm weight is not an initializer"))?;
                let (_, b) = tensors
                    .get(node.inputs.get(2).ok_or_else(|| bad("Gemm without bias"))?)
                    .ok_or_else(|| bad("Gemm bias is not an initializer"))?;
                let (outputs, inputs, weight) =
                    if node.trans_b { (wd[0], wd[1], w.clone()) } else { (wd[1], wd[0], transpose(w, wd[0], wd[1])) };
                layers.push(Dense::new(inputs, outputs, weight, b.clone()));
            }
            "MatMul" => {
                let (wd, w) = tensors.get(&node.inputs[1]).ok_or_else(|| bad("MatMul weight is not an initializer"))?;
                pending = Some((wd[0], wd[1], transpose(w, wd[0], wd[1])));
            }
            "Add" => {
                let (inputs, outputs, weight) = pending.take().ok_or_else(|| bad("Add without a MatMul before it"))?;
                let bias = node
                    .inputs
                    .iter()
                    .find_map(|i| tensors.get(i))
                    .map(|(_, b)| b.clone())
                    .ok_or_else(|| bad("Add without a bias initializer"))?;
                layers.push(Dense::new(inputs, outputs, weight, bias));
            }
            "Relu" | "Identity" => {}
            other => return Err(bad(&format!("unsupported node {other}"))),
        }
    }
    if layers.is_empty() || pending.is_some() {
        return Err(bad("no complete dense layers"));
    }
    for pair in layers.windows(2) {
        if pair[0].outputs != pair[1].inputs || pair[1].bias.len() != pair[1].outputs {
            return Err(bad("layer shapes do not chain"));
        }
    }
    Ok(Mlp { layers })
}

/// `[rows][cols]` -> `[cols][rows]`.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}
