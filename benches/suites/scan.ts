// Suite `scan`: the matching suite's "top-5 scan only" table, kept as a suite of its own so it
// runs without the model: p50 of `index.topKBatch(Float32Array query, 5)` alone (no embedding)
// over N seeded random unit vectors, f32 and f16 storage, 2 threads (and 1 with --extended), next
// to the plain JS loop (the matching suite's peer loop) over the same vectors. N as in `matching`.
import { SemanticIndex } from '../../src/index.js'
import { collectGarbage, measure, round, verdict, type Row, type Suite } from '../harness.js'
import { jsTopK } from '../peers.js'

const DIM = 384
const K = 5
const QUERY_COUNT = 16
const DEFAULT_N = [10, 50, 100, 500, 1000, 5000]
const EXTENDED_N = [10_000, 100_000, 1_000_000]
/** 1,000 rows run on one thread, 10,000 are split across threads (from 4,096). */
const QUICK_N = [1000, 10_000]

function unitVectors(n: number, rand: () => number): Float32Array {
  const out = new Float32Array(n * DIM)
  for (let r = 0; r < n; r++) {
    let norm = 0
    for (let j = 0; j < DIM; j++) {
      const v = rand() * 2 - 1
      out[r * DIM + j] = v
      norm += v * v
    }
    const inv = 1 / Math.sqrt(norm)
    for (let j = 0; j < DIM; j++) out[r * DIM + j] *= inv
  }
  return out
}

export const scan: Suite = {
  name: 'scan',
  title: `top-${K} scan alone (topKBatch with a vector) over N x ${DIM} random unit vectors, vs a plain JS loop`,
  columns: [
    'n',
    'storage',
    'threads',
    { key: 'p50_ms', label: 'p50 ms' },
    { key: 'p99_ms', label: 'p99 ms' },
    { key: 'js_p50_ms', label: 'plain JS p50 ms' },
    { key: 'speedup', label: 'speedup', format: (r) => `${r.speedup}x` },
    { key: 'top5_match', label: 'top-5 = JS' },
  ],
  async run({ opts, progress, rand }) {
    const ns = opts.n ?? (opts.quick ? QUICK_N : [...DEFAULT_N, ...(opts.extended ? EXTENDED_N : [])])
    const threadCounts = opts.extended ? [1, 2] : [2]
    const queries = unitVectors(QUERY_COUNT, rand(43))
    const query = (i: number) => queries.subarray((i % QUERY_COUNT) * DIM, ((i % QUERY_COUNT) + 1) * DIM)
    const rows: Row[] = []
    for (const n of ns) {
      const vectors = unitVectors(n, rand(42))
      const ids = Array.from({ length: n }, (_, i) => `agent-${i}`)
      let q = 0
      const js = await measure(`js n=${n}`, n >= 1_000_000 ? 5 : n >= 100_000 ? 10 : 30, () => jsTopK(vectors, DIM, query(q++), K))
      // Exactness check on 4 queries: the JS loop's top-5 ids against the index's.
      const expected = [0, 1, 2, 3].map((i) =>
        jsTopK(vectors, DIM, query(i), K)
          .map((h) => ids[h.index])
          .join(),
      )
      for (const storage of ['f32', 'f16'] as const) {
        for (const threads of threadCounts) {
          const index = SemanticIndex.create({ dim: DIM, storage, threads })
          for (let s = 0; s < n; s += 100_000) {
            const e = Math.min(n, s + 100_000)
            await index.upsert(ids.slice(s, e), vectors.subarray(s * DIM, e * DIM))
          }
          const got = await index.topKBatch(queries.subarray(0, 4 * DIM), K)
          const match = got.filter((hits, i) => hits.map((h) => h.id).join() === expected[i]).length / 4
          let i = 0
          const stats = await measure(`scan n=${n}`, opts.iterations ?? (opts.quick ? 10 : n >= 1_000_000 ? 30 : 50), () => index.topKBatch(query(i++), K))
          rows.push({
            n,
            storage,
            threads,
            mean_ms: round(stats.mean_ms),
            p50_ms: round(stats.p50_ms),
            p99_ms: round(stats.p99_ms),
            js_p50_ms: round(js.p50_ms),
            speedup: round(js.p50_ms / stats.p50_ms, 1),
            top5_match: match,
            samples: stats.samples,
          })
          progress(`n=${n} ${storage} ${threads}t: p50 ${round(stats.p50_ms)} ms (JS ${round(js.p50_ms)} ms), top-5 = JS on ${match * 4}/4`)
        }
      }
      collectGarbage()
    }
    return rows
  },
  verdicts(rows) {
    const out: string[] = []
    const bad = rows.filter((r) => r.storage === 'f32' && r.top5_match !== 1)
    out.push(
      verdict(
        bad.length === 0,
        `f32 top-5 identical to the plain JS loop's on every row checked${bad.length ? ` (differs at n=${bad.map((r) => r.n).join(', ')})` : ''}`,
      ),
    )
    const r = rows.find((x) => x.n === 1_000_000 && x.storage === 'f16' && x.threads === 2)
    out.push(
      r
        ? verdict((r.p50_ms as number) <= 40, `top-5 over 1,000,000 (f16, 2 threads) p50 ${r.p50_ms} ms (target <= 40 ms)`)
        : 'n/a   top-5 over 1,000,000 (f16, 2 threads) <= 40 ms (not measured in this run: --extended)',
    )
    return out
  },
}
