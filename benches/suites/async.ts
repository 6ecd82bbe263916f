// Suite `async`: the synchronous vs asynchronous table of the million-agent framework document
// (shared/seeds/001: sync 10.1 / 50.8 / 101.2 s vs async 0.5 / 2.1 / 3.8 s for 100 / 500 / 1,000
// agents, one LLM call each at ~100 ms), through Myriad's LLM client against src/testing/llm-server.ts
// answering every call after 100 ms; then client CPU per call side by side with bare
// undici.request (the floor) and the openai npm SDK against the same server in the same run; and
// with --extended, 1,000,000 calls in one process.
//
// The server runs in a child process, so process.cpuUsage() in this one counts the client only
// (main thread and V8's helper threads). cpu_us_per_call = (user + system CPU) / calls. heap_mb
// and rss_mb are the peaks sampled every 50 ms during the timed run. ideal_s = 0.1 s x
// ceil(agents / concurrency): waves of `concurrency` calls, each wave one server latency.

import OpenAI from 'openai'
import { Pool } from 'undici'

import { LLM, type ChatMessage } from '../../src/llm/index.js'
import { startLLMServers } from '../servers.js'
import { collectGarbage, round, verdict, workerLoops, type Call, type Context, type Row, type Suite } from '../harness.js'

const LATENCY_MS = 100
const MODEL = 'bench-model'
/** The document's figures, for the side-by-side note. */
const DOCUMENT = { sync: { 100: 10.1, 500: 50.8, 1000: 101.2 }, async: { 100: 0.5, 500: 2.1, 1000: 3.8 } } as Record<string, Record<number, number>>
/** Concurrency of the async rows: all agents at once, and a provider-sized limit. */
const ASYNC_CONCURRENCY = [1000, 250, 100]
const CPU_CONCURRENCY = 500
const MILLION = 1_000_000
const MILLION_CONCURRENCY = 1000
/** Server processes on the port: one Node process answers ~6-7k requests/s here, under the 1M run's ~10k/s. */
const SERVER_WORKERS = 2

const messagesFor = (agent: number): ChatMessage[] => [{ role: 'user', content: `Agent ${agent}: write one short post for your followers.` }]

/** Peak heap and RSS while `run` runs, sampled every 50 ms. */
async function measured<T>(run: () => Promise<T>): Promise<{ value: T; wallS: number; cpuUs: number; heapMb: number; rssMb: number }> {
  collectGarbage()
  let heap = 0
  let rss = 0
  const sample = () => {
    const m = process.memoryUsage()
    heap = Math.max(heap, m.heapUsed)
    rss = Math.max(rss, m.rss)
  }
  const sampler = setInterval(sample, 50)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const value = await run()
  const wallS = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  clearInterval(sampler)
  sample()
  return { value, wallS, cpuUs: cpu.user + cpu.system, heapMb: heap / 2 ** 20, rssMb: rss / 2 ** 20 }
}

function newLLM(url: string, concurrency: number): LLM {
  return new LLM({
    providers: [{ name: 'local', baseUrl: url, models: [MODEL], limits: { concurrency } }],
    concurrency,
  })
}

function row(
  agents: number,
  mode: string,
  concurrency: number,
  m: { wallS: number; cpuUs: number; heapMb: number; rssMb: number },
  peak: number,
  calls = agents,
): Row {
  return {
    agents,
    mode,
    concurrency,
    wall_s: round(m.wallS, 3),
    ideal_s: round((LATENCY_MS / 1000) * Math.ceil(agents / concurrency), 3),
    peak_concurrency: peak,
    heap_mb: round(m.heapMb, 1),
    rss_mb: round(m.rssMb, 1),
    cpu_us_per_call: round(m.cpuUs / calls, 1),
  }
}

/** Every agent makes its one call, one after another (the document's synchronous loop). */
async function syncRun(url: string, agents: number): Promise<Row> {
  const llm = newLLM(url, 1)
  await llm.chat({ messages: messagesFor(-1) }) // the connection, opened before the clock
  const m = await measured(async () => {
    for (let a = 0; a < agents; a++) await llm.chat({ messages: messagesFor(a) })
  })
  const peak = llm.metrics().peakConcurrency
  await llm.close()
  return row(agents, 'sync', 1, m, peak)
}

/** Every agent's call issued at once; the client's limits decide how many are in flight. */
async function asyncRun(url: string, agents: number, concurrency: number): Promise<Row> {
  const llm = newLLM(url, concurrency)
  // One untimed round opens the pool's sockets: a long-running agent process has them open.
  await Promise.all(Array.from({ length: Math.min(agents, concurrency) }, (_, a) => llm.chat({ messages: messagesFor(a) })))
  const m = await measured(() => Promise.all(Array.from({ length: agents }, (_, a) => llm.chat({ messages: messagesFor(a) }))))
  const { peakConcurrency, failures, successes } = llm.metrics()
  await llm.close()
  const failed = Object.values(failures).reduce((s, n) => s + n, 0)
  if (failed || successes !== agents + Math.min(agents, concurrency)) throw new Error(`async ${agents}: ${failed} calls failed`)
  return row(agents, 'async', concurrency, m, peakConcurrency)
}

/** The same wave of calls through bare undici.request (a Pool with one socket per call in flight): what the machine allows. */
async function floorRun(url: string, agents: number, concurrency: number): Promise<Row> {
  const base = new URL(url)
  const pool = new Pool(base.origin, { connections: concurrency })
  const path = `${base.pathname}/chat/completions`
  const headers = { 'content-type': 'application/json' }
  const call = (a: number) =>
    pool.request({ path, method: 'POST', headers, body: JSON.stringify({ model: MODEL, messages: messagesFor(a) }) }).then((r) => r.body.json())
  await workerLoops(Math.min(agents, concurrency), concurrency, call)
  let peak = 0
  const m = await measured(async () => {
    peak = await workerLoops(agents, concurrency, call)
  })
  await pool.close()
  return row(agents, 'undici-floor', concurrency, m, peak)
}

/**
 * 1,000,000 calls through one client. Agents are fed as calls complete (at most 4 x concurrency
 * issued and unfinished), as a simulation loop would step them: issuing a million promises at once
 * measures the queue's memory, not the client.
 */
async function millionRun(url: string, ctx: Context): Promise<Row> {
  const llm = newLLM(url, MILLION_CONCURRENCY)
  await Promise.all(Array.from({ length: MILLION_CONCURRENCY }, (_, a) => llm.chat({ messages: messagesFor(a) })))
  const window = 4 * MILLION_CONCURRENCY
  const m = await measured(
    () =>
      new Promise<void>((resolve, reject) => {
        let issued = 0
        let done = 0
        const next = () => {
          while (issued < MILLION && issued - done < window) {
            llm.chat({ messages: messagesFor(issued++) }).then(() => {
              if (++done === MILLION) resolve()
              else {
                if (done % 100_000 === 0) ctx.progress(`1M: ${done.toLocaleString('en-US')} calls done`)
                next()
              }
            }, reject)
          }
        }
        next()
      }),
  )
  const peak = llm.metrics().peakConcurrency
  await llm.close()
  return row(MILLION, 'async', MILLION_CONCURRENCY, m, peak)
}

/** The three clients, each set up for CPU_CONCURRENCY calls in flight against the same server. */
function cpuClients(url: string): { mode: string; call: Call; close(): Promise<void> }[] {
  const base = new URL(url)
  const pool = new Pool(base.origin, { connections: CPU_CONCURRENCY })
  const path = `${base.pathname}/chat/completions`
  const headers = { 'content-type': 'application/json' }
  const floor: Call = (i) =>
    pool.request({ path, method: 'POST', headers, body: JSON.stringify({ model: MODEL, messages: messagesFor(i) }) }).then((r) => r.body.json())
  const llm = newLLM(url, CPU_CONCURRENCY)
  const ours: Call = (i) => llm.chat({ messages: messagesFor(i) })
  const sdk = new OpenAI({ baseURL: url, apiKey: 'local', maxRetries: 0 })
  const openai: Call = (i) => sdk.chat.completions.create({ model: MODEL, messages: messagesFor(i) as OpenAI.ChatCompletionMessageParam[] })
  return [
    { mode: 'async', call: ours, close: () => llm.close() },
    { mode: 'undici-floor', call: floor, close: () => pool.close() },
    { mode: 'openai-sdk', call: openai, close: async () => {} },
  ]
}

/** Alternating rounds (ours, floor, SDK, ours, ...) so a slow stretch of the machine hits all three; the median round per client. */
async function cpuRows(url: string, calls: number, rounds: number, ctx: Context): Promise<Row[]> {
  const clients = cpuClients(url)
  const results = new Map<string, { m: Awaited<ReturnType<typeof measured>>; peak: number }[]>()
  for (const c of clients) await workerLoops(CPU_CONCURRENCY, CPU_CONCURRENCY, c.call) // sockets open, code warm
  for (let r = 0; r < rounds; r++) {
    for (const c of clients) {
      let peak = 0
      const m = await measured(async () => {
        peak = await workerLoops(calls, CPU_CONCURRENCY, c.call)
      })
      results.set(c.mode, [...(results.get(c.mode) ?? []), { m, peak }])
      ctx.progress(`cpu round ${r + 1}/${rounds} ${c.mode}: ${round(m.cpuUs / calls, 1)} us/call`)
    }
  }
  for (const c of clients) await c.close()
  return clients.map((c) => {
    const runs = [...results.get(c.mode)!].sort((a, b) => a.m.cpuUs - b.m.cpuUs)
    const median = runs[Math.floor(runs.length / 2)]
    return { ...row(calls, c.mode, CPU_CONCURRENCY, median.m, median.peak), cpu_rounds_us: runs.map((x) => round(x.m.cpuUs / calls, 1)).join(' / ') }
  })
}

async function run(ctx: Context): Promise<Row[]> {
  const quick = ctx.opts.quick
  const agentCounts = ctx.opts.n ?? (quick ? [100, 1000] : [100, 500, 1000])
  const syncCounts = quick ? [100] : agentCounts
  const server = await startLLMServers(LATENCY_MS, SERVER_WORKERS)
  const rows: Row[] = []
  try {
    for (const agents of agentCounts) {
      for (const concurrency of ASYNC_CONCURRENCY) {
        rows.push(await asyncRun(server.url, agents, concurrency))
        ctx.progress(`async ${agents} agents, concurrency ${concurrency}: ${rows.at(-1)!.wall_s} s`)
      }
      rows.push(await floorRun(server.url, agents, ASYNC_CONCURRENCY[0]))
    }
    const cpuCalls = quick ? 5000 : 10_000
    rows.push(...(await cpuRows(server.url, cpuCalls, 3, ctx)))
    if (ctx.opts.extended) {
      ctx.progress('1,000,000 calls (about 2 minutes)')
      rows.push(await millionRun(server.url, ctx))
    }
    for (const agents of syncCounts) {
      ctx.progress(`sync ${agents} agents (~${(agents * LATENCY_MS) / 1000} s)`)
      rows.push(await syncRun(server.url, agents))
    }
  } finally {
    await server.stop()
  }
  for (const agents of agentCounts) {
    const sync = rows.find((r) => r.mode === 'sync' && r.agents === agents)
    const fastest = rows.filter((r) => r.mode === 'async' && r.agents === agents).sort((a, b) => Number(a.wall_s) - Number(b.wall_s))[0]
    if (DOCUMENT.sync[agents] !== undefined && fastest) {
      ctx.note(
        `${agents} agents: the document ${DOCUMENT.sync[agents]} s sync / ${DOCUMENT.async[agents]} s async; here ${sync ? `${sync.wall_s} s sync / ` : ''}${fastest.wall_s} s async (concurrency ${fastest.concurrency})`,
      )
    }
  }
  ctx.note(
    `server latency ${LATENCY_MS} ms (src/testing/llm-server.ts, ${SERVER_WORKERS} child processes on one port); async rows: one untimed warm-up round opens the sockets first; CPU rows: ${CPU_CONCURRENCY} worker loops per client, median of alternating rounds (cpu_rounds_us lists every round)`,
  )
  return rows
}

function verdicts(rows: Row[]): string[] {
  const lines: string[] = []
  for (const r of rows.filter((x) => x.mode === 'async' && x.agents === 1000)) {
    const ratio = Number(r.wall_s) / Number(r.ideal_s)
    const floor = rows.find((x) => x.mode === 'undici-floor' && x.agents === 1000 && x.concurrency === r.concurrency)
    const floorNote = floor ? `; bare undici.request: ${floor.wall_s} s = ${round(Number(floor.wall_s) / Number(floor.ideal_s), 2)}x` : ''
    lines.push(
      verdict(
        ratio <= 1.2,
        `1,000 agents at concurrency ${r.concurrency}: ${r.wall_s} s = ${round(ratio, 2)}x the ideal ${r.ideal_s} s (target <= 1.2x${floorNote})`,
      ),
    )
  }
  const million = rows.find((x) => x.agents === MILLION)
  if (million) {
    lines.push(verdict(Number(million.wall_s) <= 150, `1,000,000 calls in ${million.wall_s} s (target <= 150 s; ideal ${million.ideal_s} s)`))
    lines.push(verdict(Number(million.heap_mb) <= 1024, `1,000,000 calls: peak heap ${million.heap_mb} MB (target <= 1,024 MB; RSS ${million.rss_mb} MB)`))
  } else {
    lines.push('NOT RUN  1,000,000 calls <= 150 s with heap <= 1 GB (needs --extended)')
  }
  const cpuOf = (mode: string) => rows.find((x) => x.mode === mode && x.concurrency === CPU_CONCURRENCY && x.agents !== MILLION)
  const [ours, floor, sdk] = [cpuOf('async'), cpuOf('undici-floor'), cpuOf('openai-sdk')]
  if (ours && floor && sdk) {
    const [o, f, s] = [Number(ours.cpu_us_per_call), Number(floor.cpu_us_per_call), Number(sdk.cpu_us_per_call)]
    lines.push(verdict(o <= 1.2 * f, `CPU per call ${o} us vs bare undici.request ${f} us = ${round(o / f, 2)}x (target <= 1.2x)`))
    lines.push(verdict(o <= s / 5, `CPU per call ${o} us vs the openai SDK ${s} us = 1/${round(s / o, 1)} (target <= 1/5)`))
  }
  return lines
}

export const async: Suite = {
  name: 'async',
  title: 'LLM calls at 100 ms: sync vs async agents (the million-agent document), CPU per call vs undici and the openai SDK',
  run,
  columns: ['agents', 'mode', 'concurrency', 'wall_s', 'ideal_s', 'peak_concurrency', 'heap_mb', 'rss_mb', 'cpu_us_per_call'],
  verdicts,
}
