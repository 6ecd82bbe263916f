// Suite `simulation`: a population run end to end on the runtime, beside the same workload
// hand-wired over the same components (the floor: what the runtime adds is the difference) and in
// plain JavaScript (what the native core buys). Per agent per tick: read the inbox, update the
// state, send one message to a random agent; 1% call the LLM (the test server at 100 ms), 0.1%
// look for helpers; everything recorded to the archive. Second workload `llm-every-turn`: every
// agent calls the LLM once per tick. Each N runs in a fresh child process.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

import { ROOT, round, verdict, type Row, type Suite } from '../harness.js'
import { startLLMServers } from '../servers.js'
import type { Config, Result } from '../simulation/workload.js'

const LATENCY_MS = 100
const CONCURRENCY = 1024
const SERVER_WORKERS = 2

async function child(config: Omit<Config, 'dir'>): Promise<Result> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', 'benches/simulation/child.ts', JSON.stringify(config)], {
    cwd: ROOT,
    maxBuffer: 16 << 20,
    timeout: 30 * 60_000,
  })
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Result
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0

/** The ideal tick of a workload: the LLM's latency times the rounds its calls need at the concurrency. */
const idealMs = (calls: number) => LATENCY_MS * Math.ceil(calls / CONCURRENCY)

export const simulation: Suite = {
  name: 'simulation',
  title: `A population end to end: runtime vs the hand-wired floor and plain JS; 1% LLM at ${LATENCY_MS} ms, 0.1% findHelpers, all recorded`,
  columns: [
    'workload',
    'agents',
    'peer',
    'setup_s',
    'tick_p50_s',
    'tick_max_s',
    'turns_per_s',
    'msgs_per_s',
    'llm_calls',
    'rss_mb',
    'heap_mb',
    'heap_bytes_per_agent',
    'lost',
    'errors',
  ],
  async run({ opts, progress, note }) {
    const mixed = opts.n ?? (opts.quick ? [1000] : opts.extended ? [1000, 10_000, 100_000, 1_000_000] : [1000, 10_000, 100_000])
    const every = opts.quick ? [1000] : [1000, 10_000]
    const ticks = opts.iterations ?? (opts.quick ? 3 : 5)
    const server = await startLLMServers(LATENCY_MS, SERVER_WORKERS)
    const rows: Row[] = []
    try {
      const plan: { workload: Config['workload']; n: number; peer: Config['peer'] }[] = []
      for (const n of mixed)
        for (const peer of ['runtime', 'floor', 'plain'] as const) if (!(peer === 'plain' && n > 100_000)) plan.push({ workload: 'mixed', n, peer })
      for (const n of every) for (const peer of ['runtime', 'floor'] as const) plan.push({ workload: 'llm-every-turn', n, peer })
      for (const { workload, n, peer } of plan) {
        const r = await child({ n, ticks, workload, peer, llmUrl: server.url, concurrency: CONCURRENCY })
        // Tick 0 has no inbox yet; the steady ticks are the rest.
        const steady = r.tick_ms.slice(1)
        const totalS = r.tick_ms.reduce((a, b) => a + b, 0) / 1000
        const row: Row = {
          workload,
          agents: n,
          peer,
          setup_s: round(r.setup_s, 2),
          tick_p50_s: round(median(steady) / 1000, 3),
          tick_max_s: round(Math.max(...r.tick_ms) / 1000, 3),
          turns_per_s: Math.round(r.turns / totalS),
          msgs_per_s: Math.round(r.sent / totalS),
          llm_calls: r.llm_calls,
          rss_mb: Math.round(r.rss_mb),
          heap_mb: Math.round(r.heap_mb),
          heap_bytes_per_agent: Math.round(r.heap_bytes_per_agent),
          lost: r.lost + (r.sent - r.delivered - r.lost),
          errors: r.errors,
          ideal_tick_s: round(idealMs(r.llm_calls / Math.max(1, r.tick_ms.length)) / 1000, 3),
        }
        rows.push(row)
        progress(`${workload} n=${n} ${peer}: setup ${row.setup_s} s, tick p50 ${row.tick_p50_s} s, rss ${row.rss_mb} MB, lost ${row.lost}`)
      }
    } finally {
      await server.stop()
    }
    note(
      `LLM: src/testing/llm-server.ts at ${LATENCY_MS} ms in ${SERVER_WORKERS} child processes, concurrency ${CONCURRENCY}; ${ticks} ticks per run, tick_p50 over ticks 1.. (tick 0 has no inbox); records to the Avro archive in a temp dir (plain JS: JSON lines)`,
    )
    note(
      'plain JS gets its specialty and query vectors from the native embedder (it has none of its own) and runs only up to 100,000 agents: its cosine scan over 10^6 rows per findHelpers would make a tick take minutes',
    )
    return rows
  },
  verdicts(rows) {
    const out: string[] = []
    const pick = (workload: string, n: number, peer: string) => rows.find((r) => r.workload === workload && r.agents === n && r.peer === peer)
    for (const r of rows.filter((x) => x.peer === 'runtime')) {
      out.push(verdict(r.lost === 0, `${r.workload} n=${r.agents}: lost ${r.lost} (target 0)`))
      const floor = pick(r.workload as string, r.agents as number, 'floor')
      if (floor && r.workload === 'mixed') {
        const overheadUs = ((Number(r.tick_p50_s) - Number(floor.tick_p50_s)) * 1e6) / Number(r.agents)
        out.push(
          verdict(
            overheadUs <= 2,
            `mixed n=${r.agents}: runtime overhead ${round(overheadUs, 2)} us per turn over the floor (tick p50 ${r.tick_p50_s} vs ${floor.tick_p50_s} s; target <= 2 us)`,
          ),
        )
      }
      if (r.workload === 'llm-every-turn' || (r.agents as number) <= 10_000) {
        const ideal = Number(r.ideal_tick_s)
        out.push(
          verdict(
            Number(r.tick_p50_s) <= 1.2 * ideal,
            `${r.workload} n=${r.agents}: tick p50 ${r.tick_p50_s} s = ${round(Number(r.tick_p50_s) / ideal, 2)}x the ideal ${ideal} s (target <= 1.2x)`,
          ),
        )
      }
      if (r.agents === 1_000_000) {
        out.push(verdict(Number(r.rss_mb) <= 2048, `1,000,000 agents: RSS ${r.rss_mb} MB (target <= 2,048)`))
        out.push(verdict(Number(r.setup_s) <= 60, `1,000,000 agents: setup ${r.setup_s} s (target <= 60)`))
        out.push(verdict(Number(r.tick_max_s) <= 5, `1,000,000 agents: slowest tick ${r.tick_max_s} s (target <= 5)`))
      }
    }
    return out
  },
}
