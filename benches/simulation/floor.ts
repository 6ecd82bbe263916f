// The floor: the same workload hand-wired over the same components (local bus connections, the
// archive sink, the LLM client, the specialty index, registry and policy) without the runtime:
// arrays for the population, one loop per tick, batches built by hand. The runtime's overhead per
// turn is its tick time minus this one's, over the turns.
import { randomUUID } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { setFlagsFromString } from 'node:v8'

import { Bus, type BusMessage, Embedder, LLM, Policy, Registry, STATE_DIM, SemanticIndex, Sink, type SinkRows, buildState } from '../../src/index.js'
import { mulberry32 } from '../../src/testing/index.js'
import { type Config, QUERY, type Result, SHARES, gc, prompt, rssSampler, specialties } from './workload.js'

const CHUNK = 4096

export async function runFloor(c: Config): Promise<Result> {
  // The young generation the runtime sets for large populations, so the comparison is of the code.
  if (c.n >= 50_000) setFlagsFromString('--max-semi-space-size=64')
  const sampler = rssSampler()
  const heapBefore = (gc(), process.memoryUsage().heapUsed)
  const setupStarted = performance.now()
  const n = c.n
  const shares = SHARES[c.workload]
  const ids = Array.from({ length: n }, (_, i) => `a-${i}`)
  const index = new Map(ids.map((id, i) => [id, i]))
  const states = Array.from({ length: n }, () => ({ got: 0, sum: 0, llm: 0 }))
  const rands = ids.map((_, i) => mulberry32(42 + i))
  const exp = `bench-floor/${Date.now()}`
  const sink = await Sink.open({ dir: c.dir })
  const write = async <T extends 'agents' | 'states' | 'messages' | 'llm_calls'>(table: T, rows: SinkRows[T][]) => {
    for (let at = 0; at < rows.length; at += CHUNK) await sink.write(table, rows.slice(at, at + CHUNK))
  }
  const texts = specialties(n)
  const embedder = await Embedder.load({ precision: 'int8' })
  const specialtyIndex = SemanticIndex.create({ embedder, storage: 'f16' })
  const registry = Registry.create()
  const policy = Policy.create({ seed: 42 })
  const distinct = await embedder.embed(texts)
  const dim = embedder.dim
  for (let at = 0; at < n; at += 8192) {
    const chunk = ids.slice(at, at + 8192)
    const vectors = new Float32Array(chunk.length * dim)
    chunk.forEach((_, j) => vectors.set(distinct.subarray(((at + j) % texts.length) * dim, (((at + j) % texts.length) + 1) * dim), j * dim))
    await specialtyIndex.upsert(chunk, vectors)
    await registry.process(
      chunk.map((id, j) => ({ v: 1, type: 'register', msgId: `r-${id}`, from: id, ts: 0, body: { specialty: texts[(at + j) % texts.length] } })),
    )
  }
  const llm = new LLM({
    providers: [{ name: 'bench', baseUrl: c.llmUrl, models: ['bench-model'], limits: { concurrency: c.concurrency, adaptive: false } }],
    concurrency: c.concurrency,
  })
  const groups = Math.min(availableParallelism(), n)
  const size = Math.ceil(n / groups)
  const inboxes = new Map<number, number[]>()
  let delivered = 0
  const busExp = `floor${Date.now()}`
  const buses = await Promise.all(
    Array.from({ length: groups }, (_, g) => Bus.connect({ exp: busExp, transport: 'local', group: `g${g}`, agents: ids.slice(g * size, (g + 1) * size) })),
  )
  for (const bus of buses) {
    bus.onMessages((batch: BusMessage[]) => {
      for (const m of batch) {
        const slot = index.get(m.agentId) as number
        const body = JSON.parse(m.payload.toString()) as { b: number }
        const box = inboxes.get(slot)
        if (box) box.push(body.b)
        else inboxes.set(slot, [body.b])
        delivered++
      }
    })
  }
  const ts = Date.now()
  await write(
    'agents',
    ids.map((id, i) => ({ exp_id: exp, agent_id: id, ts, tick: -1, profile: { s: i % texts.length } })),
  )
  await write(
    'states',
    ids.map((id, i) => ({ exp_id: exp, agent_id: id, ts, tick: -1, state: states[i] })),
  )
  const setupS = (performance.now() - setupStarted) / 1000
  gc()
  const heapAfterSetup = process.memoryUsage().heapUsed
  const tickMs: number[] = []
  let sent = 0
  let calls = 0
  let finds = 0
  for (let tick = 0; tick < c.ticks; tick++) {
    const started = performance.now()
    const now = ts + tick * 60_000
    const inbox = new Map(inboxes)
    inboxes.clear()
    const outs = buses.map(() => [] as { to: string; kind: 'agent-chat'; payload: string; from: string; msgId: string }[])
    const messageRows: SinkRows['messages'][] = []
    const stateRows: SinkRows['states'][] = []
    const waits: Promise<unknown>[] = []
    const queries: number[] = []
    for (let i = 0; i < n; i++) {
      const box = inbox.get(i)
      const state = states[i]
      if (box) {
        for (const v of box) state.sum += v
        state.got += box.length
      }
      const rand = rands[i]
      const to = ids[Math.floor(rand() * n)]
      const payload = JSON.stringify({ t: tick, b: tick })
      // Message ids as a hand-written loop makes them: the bus de-duplicates on them and the record keeps them.
      const msgId = randomUUID()
      outs[Math.floor(i / size)].push({ to, kind: 'agent-chat', payload, from: ids[i], msgId })
      messageRows.push({ exp_id: exp, msg_id: msgId, src: ids[i], dst: to, kind: 'agent-chat', ts: now, tick, payload: tick })
      const r = rand()
      if (r < shares.llm) {
        calls++
        waits.push(
          llm.chat({ messages: prompt(ids[i]), maxTokens: 16 }).then(() => {
            state.llm++
          }),
        )
      } else if (r < shares.llm + shares.helpers) queries.push(i)
      stateRows.push({ exp_id: exp, agent_id: ids[i], ts: now, tick, state })
    }
    if (queries.length > 0) {
      waits.push(
        specialtyIndex.topKBatch([QUERY], 9).then(async ([hits]) => {
          const rows = new Float32Array(queries.length * STATE_DIM)
          queries.forEach((asker, row) => {
            const candidates = hits
              .filter((h) => h.id !== ids[asker])
              .slice(0, 5)
              .map((h) => {
                const agent = registry.get(h.id)
                return { similarity: h.score, trust: agent?.trust ?? 0.5, load: agent?.load ?? 0, capacity: agent?.capacity ?? 1 }
              })
            buildState({ candidates }, rows, row * STATE_DIM)
          })
          await policy.decideBatch(rows, { temperature: 1 })
          finds += queries.length
        }),
      )
    }
    waits.push(...outs.map((batch, g) => buses[g].publish(batch)))
    waits.push(write('messages', messageRows), write('states', stateRows))
    await Promise.all(waits)
    sent += n
    while (delivered < sent) await new Promise((r) => setImmediate(r))
    tickMs.push(performance.now() - started)
  }
  await sink.flush()
  await Promise.all(buses.map((b) => b.close()))
  await llm.close()
  await sink.close()
  sampler.stop()
  return {
    setup_s: setupS,
    tick_ms: tickMs,
    turns: n * c.ticks,
    sent,
    delivered,
    lost: sent - delivered,
    errors: 0,
    llm_calls: calls,
    finds,
    rss_mb: sampler.peakMb(),
    heap_mb: heapAfterSetup / 2 ** 20,
    heap_bytes_per_agent: (heapAfterSetup - heapBefore) / n,
  }
}
