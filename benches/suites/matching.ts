// Suite `matching`: the first column of the MAMA stress study (seeds/002) — the latency of
// embedding one query and finding its top-5 agents among N (`index.topK(text, 5)`, awaited, one
// query at a time) — next to, in the same run and in alternating rounds:
// - `ort_floor_ms`: the bare onnxruntime-node session on the same ONNX file and threads, fed
//   pre-tokenised input (the model alone: what our overhead is judged against);
// - `peer_p50_ms`: @huggingface/transformers' feature-extraction pipeline (same file, same threads,
//   offline) followed by a plain JS cosine loop over the same N vectors; speedup = peer / ours.
// - `qps_1` / `qps_8`: our calls per second, awaited one at a time and eight at once (best of two
//   passes over the queries, twice each).
//
// Index contents: for N <= 5,000 the N profile texts are embedded for real (`index_build_s` is that
// `upsert(ids, texts)`). Embedding 10^5..10^6 texts would take hours here, so for N > 5,000 the
// 5,000 real profile vectors are repeated with small seeded noise (each copy renormalised) and
// upserted as vectors; such rows say `synthetic_fill: true` and `index_build_s` is the vector upsert.
// The scan's cost does not depend on what the vectors say; relevance is checked on real rows only.
import { Embedder, SemanticIndex, type Match } from '../../src/index.js'
import {
  collectGarbage,
  measureRounds,
  round,
  seededUuid,
  verdict,
  workerLoops,
  type Context,
  type Row,
  type Stats,
  type Suite,
  type TimedTask,
} from '../harness.js'
import { cosine, jsTopK, openOrtFloor, transformersPeer, type PeerEmbedder } from '../peers.js'
import { QUERIES, TEMPLATE_COUNT, makeProfiles, type Profile } from '../profiles.js'

const DEFAULT_N = [10, 50, 100, 500, 1000, 5000]
const EXTENDED_N = [10_000, 100_000, 1_000_000]
const QUICK_N = [10, 1000]
/** Profiles embedded for real; larger N reuse their vectors with noise. */
const REAL_PROFILES = 5000
/** Uniform noise per coordinate added to a copied unit vector before renormalising (cosine to its source ~0.97). */
const FILL_NOISE = 0.04
/** Seeded noise values; each filled row reads `dim` of them from a seeded offset (a PRNG call per value made 10^6 rows slow). */
const NOISE_TABLE = 1 << 16
const K = 5
type Config = { precision: 'fp32' | 'int8'; threads: number }
const CONFIGS: Config[] = [
  { precision: 'fp32', threads: 2 },
  { precision: 'int8', threads: 1 },
  { precision: 'int8', threads: 2 },
]
const QUICK_CONFIGS = CONFIGS.slice(0, 2)

const fmt = (v: unknown, digits = 2) => (typeof v === 'number' ? v.toFixed(digits) : '')

export const matching: Suite = {
  name: 'matching',
  title: `embed one query + top-${K} among N agents (MAMA stress study, column 1); ${TEMPLATE_COUNT} specialty domains, ${QUERIES.length} queries`,
  columns: [
    'n',
    'precision',
    'threads',
    { key: 'mean_ms', label: 'mean ± std ms', format: (r) => `${fmt(r.mean_ms)} ± ${fmt(r.std_ms)}` },
    { key: 'p50_ms', label: 'p50 ms', format: (r) => fmt(r.p50_ms, 3) },
    { key: 'p99_ms', label: 'p99 ms', format: (r) => fmt(r.p99_ms) },
    { key: 'ort_floor_ms', label: 'ORT floor p50 ms', format: (r) => fmt(r.ort_floor_ms, 3) },
    { key: 'vs_floor', label: 'p50 / floor', format: (r) => fmt(r.vs_floor) },
    { key: 'peer_p50_ms', label: 'peer p50 ms', format: (r) => (r.peer_error ? 'error' : fmt(r.peer_p50_ms)) },
    { key: 'speedup', label: 'speedup', format: (r) => (typeof r.speedup === 'number' ? `${fmt(r.speedup)}x` : '') },
    { key: 'qps_8', label: 'q/s, 1 / 8 at once', format: (r) => `${fmt(r.qps_1, 0)} / ${fmt(r.qps_8, 0)}` },
    { key: 'index_build_s', label: 'build s', format: (r) => fmt(r.index_build_s) },
    { key: 'synthetic_fill', label: 'fill', format: (r) => (r.synthetic_fill ? 'synthetic' : 'real') },
  ],
  async run(ctx) {
    const { opts, progress, note } = ctx
    const ns = opts.n ?? (opts.quick ? QUICK_N : [...DEFAULT_N, ...(opts.extended ? EXTENDED_N : [])])
    const queries = opts.quick ? QUERIES.slice(0, 10) : QUERIES
    const texts = queries.map((q) => q.text)
    const rounds = opts.iterations ?? (opts.quick ? 3 : 5)
    // --quick runs the peer on one N only (it is the slow part of a smoke run).
    const peerNs = new Set(opts.quick ? [Math.max(...ns)] : ns)
    const profiles = makeProfiles(Math.min(Math.max(...ns), REAL_PROFILES), 42)
    note(`${rounds} rounds x ${queries.length} queries per row (ours, ORT floor and peer alternate by round); seed 42`)
    const rows: Row[] = []
    for (const config of opts.quick ? QUICK_CONFIGS : CONFIGS) {
      rows.push(
        ...(await runConfig(
          ctx,
          config,
          ns,
          texts,
          queries.map((q) => q.domain),
          profiles,
          rounds,
          peerNs,
        )),
      )
      collectGarbage()
    }
    if (ns.some((n) => n > REAL_PROFILES)) {
      note(
        `N > ${REAL_PROFILES}: the ${REAL_PROFILES} real profile vectors repeated with seeded noise (±${FILL_NOISE / 2} per coordinate, renormalised): synthetic_fill rows`,
      )
    }
    progress('done')
    return rows
  },
  verdicts(rows) {
    const at = (n: number, precision: string, threads?: number) =>
      rows.filter((r) => r.n === n && r.precision === precision && (threads === undefined || r.threads === threads))
    const out: string[] = []
    const missing = (what: string) => out.push(`n/a   ${what} (not measured in this run)`)
    const fp = at(5000, 'fp32', 2)[0]
    if (fp)
      out.push(
        verdict(
          (fp.vs_floor as number) <= 1.15,
          `N=5000 fp32 2 threads: p50 ${fp.p50_ms} ms = ${fmt(fp.vs_floor)}x the bare ORT session (${fp.ort_floor_ms} ms) (target <= 1.15x)`,
        ),
      )
    else missing('N=5000 fp32 p50 <= 1.15x ORT floor')
    const q8 = at(5000, 'int8', 1)[0]
    if (q8) out.push(verdict((q8.p50_ms as number) <= 2.5, `N=5000 int8 1 thread: p50 ${q8.p50_ms} ms (target <= 2.5 ms)`))
    else missing('N=5000 int8 p50 <= 2.5 ms on 1 thread')
    for (const [n, target] of [
      [5000, 1.5],
      [100_000, 5],
    ]) {
      const withPeer = rows.filter((r) => r.n === n && typeof r.speedup === 'number')
      if (withPeer.length === 0) missing(`N=${n.toLocaleString('en-US')} speedup >= ${target}x over transformers.js + JS loop`)
      for (const r of withPeer) {
        out.push(
          verdict(
            (r.speedup as number) >= target,
            `N=${n.toLocaleString('en-US')} ${r.precision} ${r.threads}t: speedup ${r.speedup}x over transformers.js + JS loop (target >= ${target}x)`,
          ),
        )
      }
    }
    return out
  },
}

async function runConfig(
  ctx: Context,
  { precision, threads }: Config,
  ns: number[],
  texts: string[],
  queryDomains: string[],
  profiles: Profile[],
  rounds: number,
  peerNs: Set<number>,
): Promise<Row[]> {
  const { progress, note } = ctx
  const tag = `${precision}/${threads}t`
  const embedder = await Embedder.load({ precision, threads, offline: true })
  const dim = embedder.dim
  progress(`${tag}: loaded ${embedder.modelPath}`)
  const floor = await openOrtFloor(embedder, texts)
  progress(`${tag}: ORT floor session ready (inputs ${floor.inputNames.join(', ')})`)

  let peer: PeerEmbedder | undefined
  let peerError: string | undefined
  let peerCosine: number | null = null
  if (ns.some((n) => peerNs.has(n))) {
    try {
      peer = await transformersPeer(embedder, precision)
      // One query per call on both sides, as timed. (Batched, int8 embeddings differ from single
      // ones, cosine ~0.99: dynamic quantisation scales its activations over the padded batch.)
      peerCosine = 1
      for (const text of texts) peerCosine = Math.min(peerCosine, cosine(await peer.embed(text), await embedder.embed([text])))
      const line = `${tag}: transformers.js embeddings vs ours: min cosine ${peerCosine.toFixed(6)} over ${texts.length} queries`
      note(`${peerCosine > 0.999 ? 'ok   ' : 'WARN '} ${line} (must be > 0.999)`)
      progress(line)
    } catch (e) {
      peerError = errorText(e)
      note(`${tag}: peer unavailable: ${peerError}`)
      progress(`${tag}: peer unavailable: ${peerError}`)
    }
  }

  // The pool that N > REAL_PROFILES rows are filled from: the real profile vectors, embedded once.
  let pool: Float32Array | undefined
  const rows: Row[] = []
  for (const n of ns) {
    const synthetic = n > REAL_PROFILES
    const index = SemanticIndex.create({ embedder, threads })
    let ids: string[]
    let vectors: Float32Array | undefined
    let buildS: number
    if (!synthetic) {
      ids = profiles.slice(0, n).map((p) => p.id)
      const t0 = performance.now()
      await index.upsert(
        ids,
        profiles.slice(0, n).map((p) => p.specialty),
      )
      buildS = (performance.now() - t0) / 1000
      progress(`${tag} n=${n}: index built from texts in ${buildS.toFixed(2)} s`)
    } else {
      pool ??= await embedder.embed(profiles.map((p) => p.specialty))
      ;({ ids, vectors } = fillWithNoise(ctx.rand(43), profiles, pool, dim, n))
      const t0 = performance.now()
      for (let s = 0; s < n; s += 100_000) {
        const e = Math.min(n, s + 100_000)
        await index.upsert(ids.slice(s, e), vectors.subarray(s * dim, e * dim))
      }
      buildS = (performance.now() - t0) / 1000
      progress(`${tag} n=${n}: index built from synthetic-fill vectors in ${buildS.toFixed(2)} s`)
    }

    // Relevance: the share of top-5 agents whose domain is the query's (each row's source profile).
    // One query at a time, as timed (batched int8 query embeddings differ slightly from single ones).
    const ourHits: Match[][] = []
    for (const text of texts) ourHits.push(await index.topK(text, K))
    const hitIds = new Set(ourHits.flat().map((h) => h.id))
    const domainOf = new Map<string, string>()
    ids.forEach((id, r) => hitIds.has(id) && domainOf.set(id, profiles[r % profiles.length].domain))
    const inDomain = ourHits.reduce((s, hits, q) => s + hits.filter((h) => domainOf.get(h.id) === queryDomains[q]).length / hits.length, 0) / texts.length

    const runPeer = peer !== undefined && peerNs.has(n)
    if (runPeer && !vectors) vectors = gather(index, ids, dim)
    let qi = 0
    let fi = 0
    let pi = 0
    const tasks: TimedTask[] = [
      { name: `myriad n=${n}`, iterations: texts.length, fn: () => index.topK(texts[qi++ % texts.length], K) },
      { name: `ort floor n=${n}`, iterations: texts.length, fn: () => floor.run(fi++) },
    ]
    // The peer's JS loop takes ~0.9 s a query at 10^6 rows: fewer calls per round there (the query
    // counter carries over, so the rounds still cover all the queries).
    const peerIterations = n >= 100_000 ? Math.min(10, texts.length) : texts.length
    if (runPeer) {
      const p = peer!
      const rowsOf = vectors!
      tasks.push({
        name: `peer n=${n}`,
        iterations: peerIterations,
        warmup: n >= 100_000 ? 2 : texts.length,
        fn: async () => jsTopK(rowsOf, dim, await p.embed(texts[pi++ % texts.length]), K),
      })
    }
    let ours: Stats
    let floorStats: Stats
    let peerStats: Stats | undefined
    let rowPeerError = peerNs.has(n) ? peerError : undefined
    collectGarbage() // not on the clock: what building the index and loading the peer left behind
    try {
      ;[ours, floorStats, peerStats] = await measureRounds(tasks, rounds)
    } catch (e) {
      if (!runPeer) throw e
      // The peer failed mid-run: measure without it, and say why in the row.
      rowPeerError = `failed while measuring: ${errorText(e)}`
      ;[ours, floorStats] = await measureRounds(tasks.slice(0, 2), rounds)
      peerStats = undefined
    }

    // Throughput, one call at a time and eight at once (an agent population asks concurrently:
    // the searches then overlap the next embeddings). Each over every query twice, alternating.
    const qps = { 1: [] as number[], 8: [] as number[] }
    for (let pass = 0; pass < 2; pass++) {
      for (const inFlight of [1, 8] as const) {
        qps[inFlight].push(await throughput(texts, inFlight, (text) => index.topK(text, K)))
      }
    }

    // Same vectors, same cosine: the peer's top-5 should be ours (checked where the JS loop is
    // cheap). Scores are compared, not ids: profiles with the same text tie, in either order.
    let peerTop5Match: number | null = null
    if (runPeer && peerStats && n <= 10_000) {
      let same = 0
      for (const [q, text] of texts.entries()) {
        const theirs = jsTopK(vectors!, dim, await peer!.embed(text), K)
        if (theirs.every((h, r) => Math.abs(h.score - ourHits[q][r].score) < 1e-4)) same++
      }
      peerTop5Match = round(same / texts.length, 3)
    }

    const row: Row = {
      n,
      precision,
      threads,
      mean_ms: round(ours.mean_ms),
      std_ms: round(ours.std_ms),
      p50_ms: round(ours.p50_ms),
      p99_ms: round(ours.p99_ms),
      ort_floor_ms: round(floorStats.p50_ms),
      peer_p50_ms: peerStats ? round(peerStats.p50_ms) : null,
      speedup: peerStats ? round(peerStats.p50_ms / ours.p50_ms, 2) : null,
      vs_floor: round(ours.p50_ms / floorStats.p50_ms, 3),
      qps_1: round(Math.max(...qps[1]), 1),
      qps_8: round(Math.max(...qps[8]), 1),
      samples: ours.samples,
      queries: texts.length,
      ort_floor_mean_ms: round(floorStats.mean_ms),
      peer_samples: peerStats?.samples ?? null,
      peer_cosine_min: runPeer && peerCosine !== null ? round(peerCosine, 6) : null,
      peer_top5_match: peerTop5Match,
      top5_in_domain: round(inDomain, 3),
      index_build_s: round(buildS, 3),
      synthetic_fill: synthetic,
    }
    if (rowPeerError) row.peer_error = rowPeerError
    rows.push(row)
    progress(`${tag} n=${n}: p50 ${row.p50_ms} ms (floor ${row.ort_floor_ms}, peer ${row.peer_p50_ms ?? '-'}), top-5 in domain ${row.top5_in_domain}`)
    vectors = undefined
    collectGarbage()
  }
  await floor.release()
  await peer?.dispose()
  return rows
}

/** Calls per second of `call` over `texts` (each twice), `inFlight` awaited at a time. */
async function throughput(texts: string[], inFlight: number, call: (text: string) => Promise<unknown>): Promise<number> {
  const total = texts.length * 2
  const t0 = performance.now()
  await workerLoops(total, inFlight, (i) => call(texts[i % texts.length]))
  return total / ((performance.now() - t0) / 1000)
}

/** The stored vectors of `ids`, row-major (what the peer's JS loop scans). */
function gather(index: SemanticIndex, ids: string[], dim: number): Float32Array {
  const out = new Float32Array(ids.length * dim)
  ids.forEach((id, r) => out.set(index.get(id), r * dim))
  return out
}

/** N rows: the real vectors first, then copies of them with seeded noise, renormalised; seeded ids. */
function fillWithNoise(rand: () => number, profiles: Profile[], pool: Float32Array, dim: number, n: number) {
  const count = profiles.length
  const ids = profiles.map((p) => p.id)
  const noise = Float32Array.from({ length: NOISE_TABLE + dim }, () => (rand() - 0.5) * FILL_NOISE)
  const vectors = new Float32Array(n * dim)
  vectors.set(pool.subarray(0, Math.min(count, n) * dim))
  for (let r = count; r < n; r++) {
    ids.push(seededUuid(rand))
    const src = (r % count) * dim
    const dst = r * dim
    const off = Math.floor(rand() * NOISE_TABLE)
    let norm = 0
    for (let j = 0; j < dim; j++) {
      const v = pool[src + j] + noise[off + j]
      vectors[dst + j] = v
      norm += v * v
    }
    const inv = 1 / Math.sqrt(norm)
    for (let j = 0; j < dim; j++) vectors[dst + j] *= inv
  }
  return { ids, vectors }
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300)
}
