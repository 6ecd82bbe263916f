// The workload in plain JavaScript, as it is written without a native core: an object per agent,
// inboxes as arrays, undici for the LLM, a JS cosine scan for helpers, JSON lines for records.
// Its specialty and query vectors are given (embedded before it starts, by the same model):
// plain JavaScript has no embedder of its own, and the comparison is of everything else.
import { createWriteStream } from 'node:fs'
import { join } from 'node:path'

import { Pool } from 'undici'

import { Embedder } from '../../src/index.js'
import { mulberry32 } from '../../src/testing/index.js'
import { type Config, QUERY, type Result, SHARES, gc, prompt, rssSampler, specialties } from './workload.js'

interface Agent {
  id: string
  state: { got: number; sum: number; llm: number }
  inbox: number[]
  next: number[]
  rand: () => number
  vector: Float32Array
  trust: number
}

export async function runPlain(c: Config): Promise<Result> {
  const n = c.n
  const shares = SHARES[c.workload]
  const texts = specialties(n)
  const embedder = await Embedder.load({ precision: 'int8' })
  const vectors = await embedder.embed(texts)
  const query = await embedder.embed([QUERY])
  const dim = embedder.dim
  const sampler = rssSampler()
  const heapBefore = (gc(), process.memoryUsage().heapUsed)
  const setupStarted = performance.now()
  const agents: Agent[] = Array.from({ length: n }, (_, i) => ({
    id: `a-${i}`,
    state: { got: 0, sum: 0, llm: 0 },
    inbox: [],
    next: [],
    rand: mulberry32(42 + i),
    vector: vectors.slice((i % texts.length) * dim, ((i % texts.length) + 1) * dim),
    trust: 0.5,
  }))
  const byId = new Map(agents.map((a) => [a.id, a]))
  const out = createWriteStream(join(c.dir, 'records.jsonl'))
  const record = (row: object) => (out.write(`${JSON.stringify(row)}\n`) ? undefined : new Promise<void>((r) => out.once('drain', () => r())))
  for (const a of agents) await record({ table: 'agents', agent_id: a.id, tick: -1, profile: { s: 0 } })
  const url = new URL(c.llmUrl)
  const pool = new Pool(url.origin, { connections: c.concurrency })
  let inFlight = 0
  const waiting: (() => void)[] = []
  const llmCall = async (agent: Agent) => {
    while (inFlight >= c.concurrency) await new Promise<void>((r) => waiting.push(r))
    inFlight++
    try {
      const res = await pool.request({
        path: `${url.pathname}/chat/completions`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bench-model', messages: prompt(agent.id), max_tokens: 16 }),
      })
      await res.body.json()
      agent.state.llm++
    } finally {
      inFlight--
      waiting.shift()?.()
    }
  }
  const findHelpers = (asker: Agent) => {
    const scored: { a: Agent; s: number }[] = []
    for (const a of agents) {
      if (a === asker) continue
      let dot = 0
      for (let d = 0; d < dim; d++) dot += a.vector[d] * query[d]
      scored.push({ a, s: dot })
    }
    scored.sort((x, y) => y.s - x.s)
    return scored.slice(0, 5).sort((x, y) => y.a.trust - x.a.trust)[0]?.a
  }
  const setupS = (performance.now() - setupStarted) / 1000
  gc()
  const heapAfterSetup = process.memoryUsage().heapUsed
  const tickMs: number[] = []
  let sent = 0
  let calls = 0
  let finds = 0
  for (let tick = 0; tick < c.ticks; tick++) {
    const started = performance.now()
    for (const a of agents) {
      a.inbox = a.next
      a.next = []
    }
    const waits: Promise<unknown>[] = []
    for (const a of agents) {
      for (const v of a.inbox) a.state.sum += v
      a.state.got += a.inbox.length
      const to = agents[Math.floor(a.rand() * n)]
      ;(byId.get(to.id) as Agent).next.push(tick)
      sent++
      const wait = record({ table: 'messages', src: a.id, dst: to.id, tick, payload: tick })
      if (wait) await wait
      const r = a.rand()
      if (r < shares.llm) {
        calls++
        waits.push(llmCall(a))
      } else if (r < shares.llm + shares.helpers) {
        if (findHelpers(a)) finds++
      }
      const stateWait = record({ table: 'states', agent_id: a.id, tick, state: a.state })
      if (stateWait) await stateWait
    }
    await Promise.all(waits)
    tickMs.push(performance.now() - started)
  }
  await new Promise<void>((r) => out.end(() => r()))
  await pool.close()
  sampler.stop()
  return {
    setup_s: setupS,
    tick_ms: tickMs,
    turns: n * c.ticks,
    sent,
    delivered: sent,
    lost: 0,
    errors: 0,
    llm_calls: calls,
    finds,
    rss_mb: sampler.peakMb(),
    heap_mb: heapAfterSetup / 2 ** 20,
    heap_bytes_per_agent: (heapAfterSetup - heapBefore) / n,
  }
}
