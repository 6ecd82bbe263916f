// Suite `matching`: the first column of the MAMA stress study (seeds/002) — latency of embedding a
// query and finding its top-5 agents among N — for Myriad, next to the bare ONNX Runtime session
// (our floor) and to transformers.js + a plain JS cosine loop (the peer), in the same run.
import { randomUUID } from 'node:crypto'

import { Embedder, SemanticIndex } from '../../index.js'
import { measure, prng, round, type Options, type Row, type Suite } from '../harness.js'
import { cosine, jsTopK, ortFloor, transformersPeer, type PeerEmbedder } from '../peers.js'
import { QUERIES, TEMPLATE_COUNT, makeProfiles } from '../profiles.js'

const DEFAULT_N = [10, 50, 100, 500, 1000, 5000]
const EXTENDED_N = [10_000, 100_000, 1_000_000]
/** Profiles embedded for real; larger N reuse them with noise (embedding 10^6 texts takes hours here). */
const REAL_PROFILES = 5000
const CONFIGS = [
  { precision: 'fp32', threads: 2 },
  { precision: 'int8', threads: 1 },
] as const
const K = 5

export const matching: Suite = {
  name: 'matching',
  title: `embed + top-${K} latency per query (MAMA stress study, column 1), ${TEMPLATE_COUNT} specialty templates`,
  columns: ['n', 'precision', 'threads', 'mean_ms', 'std_ms', 'p50_ms', 'p99_ms', 'ort_floor_ms', 'peer_p50_ms', 'speedup'],
  async run(opts: Options, progress) {
    const ns = opts.n ?? (opts.quick ? [10, 1000] : [...DEFAULT_N, ...(opts.extended ? EXTENDED_N : [])])
    const queries = opts.quick ? QUERIES.slice(0, 10) : QUERIES
    const iterations = queries.length * (opts.iterations ?? (opts.quick ? 1 : 3))
    const profiles = makeProfiles(Math.min(Math.max(...ns), REAL_PROFILES))
    const rows: Row[] = []
    for (const { precision, threads } of CONFIGS) {
      const embedder = await Embedder.load({ precision, threads, offline: true })
      const t0 = performance.now()
      const real = await embedder.embed(profiles)
      const buildS = round((performance.now() - t0) / 1000, 2)
      progress(`${precision}/${threads}t: embedded ${profiles.length} profiles in ${buildS} s`)
      const floor = await ortFloor(embedder, queries, iterations)
      let peer: PeerEmbedder | undefined
      let peerError: string | undefined
      try {
        peer = await transformersPeer(embedder, precision)
        const agreement = cosine(await peer.embed(queries[0]), await embedder.embed([queries[0]]))
        progress(`${precision}: transformers.js vs Myriad embedding cosine ${agreement.toFixed(6)}`)
      } catch (e) {
        peerError = String(e instanceof Error ? e.message : e).slice(0, 200)
        progress(`${precision}: peer unavailable: ${peerError}`)
      }
      for (const n of ns) {
        const vectors = n <= real.length / embedder.dim ? real.subarray(0, n * embedder.dim) : fillWithNoise(real, embedder.dim, n)
        const index = new SemanticIndex({ embedder, threads })
        const ids = Array.from({ length: n }, () => randomUUID())
        for (let s = 0; s < n; s += 100_000) {
          const e = Math.min(n, s + 100_000)
          await index.upsert(ids.slice(s, e), vectors.subarray(s * embedder.dim, e * embedder.dim))
        }
        let i = 0
        const ours = await measure(`myriad n=${n}`, iterations, () => index.topK(queries[i++ % queries.length], K))
        let peerP50: number | null = null
        if (peer) {
          const p = peer
          let j = 0
          const peerIterations = n >= 100_000 ? queries.length : iterations
          const stats = await measure(`peer n=${n}`, peerIterations, async () =>
            jsTopK(vectors, embedder.dim, await p.embed(queries[j++ % queries.length]), K),
          )
          peerP50 = stats.p50_ms
        }
        rows.push({
          n,
          precision,
          threads,
          mean_ms: round(ours.mean_ms),
          std_ms: round(ours.std_ms),
          p50_ms: round(ours.p50_ms),
          p99_ms: round(ours.p99_ms),
          ort_floor_ms: round(floor.p50_ms),
          peer_p50_ms: peerP50 === null ? null : round(peerP50),
          speedup: peerP50 === null ? null : round(peerP50 / ours.p50_ms, 2),
          queries: queries.length,
          samples: ours.samples,
          synthetic_fill: n > real.length / embedder.dim,
          index_build_s: buildS,
          ...(peerError ? { peer_error: peerError } : {}),
        })
        progress(`${precision} n=${n}: p50 ${round(ours.p50_ms)} ms (floor ${round(floor.p50_ms)}, peer ${peerP50 === null ? '-' : round(peerP50)})`)
      }
    }
    return rows
  },
  verdicts(rows) {
    const find = (n: number, precision: string) => rows.find((r) => r.n === n && r.precision === precision)
    const out: string[] = []
    const fp = find(5000, 'fp32')
    if (fp) {
      const ratio = (fp.p50_ms as number) / (fp.ort_floor_ms as number)
      out.push(verdict(ratio <= 1.15, `N=5000 fp32 p50 ${fp.p50_ms} ms = ${ratio.toFixed(2)}x the bare ORT session (target <= 1.15x)`))
      if (fp.speedup !== null) out.push(verdict((fp.speedup as number) >= 1.5, `N=5000 speedup over transformers.js + JS loop ${fp.speedup}x (target >= 1.5x)`))
    }
    const q8 = find(5000, 'int8')
    if (q8) out.push(verdict((q8.p50_ms as number) <= 2.5, `N=5000 int8 p50 ${q8.p50_ms} ms on ${q8.threads} thread(s) (target <= 2.5 ms on 1 thread)`))
    const big = find(100_000, 'fp32')
    if (big && big.speedup !== null) out.push(verdict((big.speedup as number) >= 5, `N=100000 speedup ${big.speedup}x (target >= 5x)`))
    return out
  },
}

export function verdict(ok: boolean, text: string): string {
  return `${ok ? 'PASS' : 'MISS'}  ${text}`
}

/** N vectors: the real ones, then copies of them with seeded noise, renormalised. */
function fillWithNoise(real: Float32Array, dim: number, n: number): Float32Array {
  const rand = prng(42)
  const count = real.length / dim
  const out = new Float32Array(n * dim)
  out.set(real)
  for (let r = count; r < n; r++) {
    const src = (r % count) * dim
    let norm = 0
    for (let j = 0; j < dim; j++) {
      const v = real[src + j] + (rand() - 0.5) * 0.1
      out[r * dim + j] = v
      norm += v * v
    }
    const inv = 1 / Math.sqrt(norm)
    for (let j = 0; j < dim; j++) out[r * dim + j] *= inv
  }
  return out
}
