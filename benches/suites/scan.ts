// Suite `scan`: the exact top-5 scan alone (no embedding) over N random unit vectors, f32 and f16,
// 1 and 2 threads, next to the plain JS loop over the same vectors.
import { SemanticIndex } from '../../index.js'
import { measure, prng, round, type Row, type Suite } from '../harness.js'
import { jsTopK } from '../peers.js'
import { verdict } from './matching.js'

const DIM = 384
const K = 5

function unitVectors(n: number, seed: number): Float32Array {
  const rand = prng(seed)
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
  title: `top-${K} scan alone over N x ${DIM} vectors (no embedding), vs a plain JS loop`,
  columns: ['n', 'storage', 'threads', 'mean_ms', 'p50_ms', 'p99_ms', 'js_p50_ms', 'speedup'],
  async run(opts, progress) {
    const ns = opts.n ?? (opts.quick ? [100_000] : [5000, 100_000, 1_000_000])
    const queries = unitVectors(16, 7)
    const rows: Row[] = []
    for (const n of ns) {
      const vectors = unitVectors(n, 42)
      const ids = Array.from({ length: n }, (_, i) => `agent-${i}`)
      let q = 0
      const nextQuery = () => queries.subarray((q % 16) * DIM, (q++ % 16 + 1) * DIM)
      const js = await measure(`js n=${n}`, n >= 1_000_000 ? 5 : 20, () => jsTopK(vectors, DIM, nextQuery(), K))
      for (const storage of ['f32', 'f16'] as const) {
        for (const threads of [1, 2]) {
          const index = new SemanticIndex({ dim: DIM, storage, threads })
          for (let s = 0; s < n; s += 100_000) {
            const e = Math.min(n, s + 100_000)
            await index.upsert(ids.slice(s, e), vectors.subarray(s * DIM, e * DIM))
          }
          const stats = await measure(`scan n=${n}`, opts.iterations ?? (opts.quick ? 10 : 30), () => index.topKBatch(nextQuery(), K))
          rows.push({
            n,
            storage,
            threads,
            mean_ms: round(stats.mean_ms),
            p50_ms: round(stats.p50_ms),
            p99_ms: round(stats.p99_ms),
            js_p50_ms: round(js.p50_ms),
            speedup: round(js.p50_ms / stats.p50_ms, 1),
          })
          progress(`n=${n} ${storage} ${threads}t: p50 ${round(stats.p50_ms)} ms (JS ${round(js.p50_ms)} ms)`)
        }
      }
    }
    return rows
  },
  verdicts(rows) {
    const r = rows.find((x) => x.n === 1_000_000 && x.storage === 'f16' && x.threads === 2)
    return r ? [verdict((r.p50_ms as number) <= 40, `top-5 over 1,000,000 (f16, 2 threads) p50 ${r.p50_ms} ms (target <= 40 ms)`)] : []
  },
}
