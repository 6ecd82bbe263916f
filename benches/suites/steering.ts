// Suite `steering`: what steering a population costs. `replay`: examples/mutual-aid.ts run as a
// user runs it, live against the test server at 100 ms, then again with MYRIAD_REPLAY (its LLM
// calls answered from the first run's llm_calls), each in its own process; the two archives are
// compared row for row. `survey`: every agent of a population answers a two-question survey
// through the LLM (the test server at 100 ms, concurrency 1024), against the ideal latency x
// ceil(agents / concurrency). `checkpoint`: a population with specialties checkpointed after a
// tick and resumed (benches/steering/checkpoint.ts, a process per N): the time of each, the size.
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { z } from 'zod'

import { Experiment, LLM, type SinkTable, defineAgent, defineSurvey, readArchive } from '../../src/index.js'
import { ROOT, round, verdict, type Row, type Suite } from '../harness.js'
import { startLLMServers } from '../servers.js'

const LATENCY_MS = 100
const CONCURRENCY = 1024
/** The tables two runs of one seed must share, row for row (metrics hold timings). */
const COMPARED: SinkTable[] = ['agents', 'states', 'messages', 'surveys', 'llm_calls', 'events', 'errors']

/** Runs the example in a child process; its wall time is the run's own (`summary.wallS`, printed). */
async function mutualAid(env: Record<string, string>): Promise<{ wallS: number; setupS: number; runDir: string; calls: number }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/mutual-aid.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    maxBuffer: 16 << 20,
    timeout: 30 * 60_000,
  })
  const wall = /turns in ([\d.]+) s \(setup ([\d.]+) s\)/.exec(stdout)
  if (!wall) throw new Error(`mutual-aid printed no summary:\n${stdout.slice(-2000)}`)
  const base = join(env.MYRIAD_RUNS_DIR, 'mutual-aid')
  const [run] = readdirSync(base)
  const calls = [...stdout.matchAll(/(\d+) LLM calls/g)].reduce((n, m) => n + Number(m[1]), 0)
  return { wallS: Number(wall[1]), setupS: Number(wall[2]), runDir: join(base, run), calls }
}

/** Rows without what is measured (latencies) or names the run (exp_id), in one order. */
async function comparable(dir: string, table: SinkTable): Promise<string[]> {
  const rows = await readArchive(dir, { table })
  return rows
    .map((r) => {
      const { exp_id: _e, latency_ms: _l, ...rest } = r as Record<string, unknown>
      // An errors row's detail holds a stack trace: the code and message are the comparable part.
      if (table === 'errors') rest.detail = String(rest.detail).split('\n')[0]
      return JSON.stringify(rest)
    })
    .sort()
}

async function checkpointRow(agents: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-bench-checkpoint-'))
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', 'benches/steering/checkpoint.ts', String(agents), dir], {
      cwd: ROOT,
      maxBuffer: 16 << 20,
      timeout: 60 * 60_000,
    })
    const r = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { checkpoint_s: number; resume_s: number; bytes: number; rss_mb: number; turns: number }
    return {
      case: 'checkpoint + resume',
      agents,
      checkpoint_s: round(r.checkpoint_s, 2),
      resume_s: round(r.resume_s, 2),
      checkpoint_mb: round(r.bytes / 2 ** 20, 1),
      bytes_per_agent: Math.round(r.bytes / agents),
      rss_mb: Math.round(r.rss_mb),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function replayRow(agents: number, ticks: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-bench-replay-'))
  try {
    const env = { MYRIAD_AGENTS: String(agents), MYRIAD_TICKS: String(ticks) }
    const live = await mutualAid({ ...env, MYRIAD_RUNS_DIR: join(dir, 'live') })
    const again = await mutualAid({ ...env, MYRIAD_RUNS_DIR: join(dir, 'again'), MYRIAD_REPLAY: live.runDir })
    let rows = 0
    let differing = 0
    for (const table of COMPARED) {
      const [a, b] = [await comparable(live.runDir, table), await comparable(again.runDir, table)]
      rows += a.length
      const other = new Set(b)
      differing += a.filter((r) => !other.has(r)).length + Math.abs(a.length - b.length)
    }
    return {
      case: 'replay mutual-aid',
      agents,
      ticks,
      llm_calls: live.calls,
      // The ticks: setup (loading the embedder, embedding the specialties) is the same work in both.
      setup_s: round(live.setupS, 2),
      live_s: round(live.wallS - live.setupS, 2),
      replay_s: round(again.wallS - again.setupS, 2),
      speedup: round((live.wallS - live.setupS) / (again.wallS - again.setupS), 1),
      rows_compared: rows,
      rows_differing: differing,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const Respondent = defineAgent({ name: 'respondent', profile: z.object({}), state: {} })

/** The floor: as many `llm.json` calls with the form's schema, straight from one LLM client at the same concurrency. */
async function floor(calls: number, url: string, schema: z.ZodType): Promise<number> {
  const llm = new LLM({ providers: [{ name: 'test', baseUrl: url, models: ['test'] }], concurrency: CONCURRENCY })
  try {
    const started = performance.now()
    await Promise.all(
      Array.from({ length: calls }, (_, i) => llm.json({ messages: [{ role: 'user', content: `You are respondent-${i}. Answer the survey.` }], schema })),
    )
    return (performance.now() - started) / 1000
  } finally {
    await llm.close()
  }
}

async function surveyRow(agents: number, url: string): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-bench-survey-'))
  try {
    const form = defineSurvey({
      name: 'bench',
      questions: [
        { id: 'trust', kind: 'likert', text: 'I trust my neighbours', points: 5 },
        { id: 'vote', kind: 'single', text: 'Will you vote?', options: ['yes', 'no', 'unsure'] },
      ],
    })
    const exp = new Experiment({
      name: 'survey-bench',
      population: [{ agent: Respondent, count: agents, profiles: () => ({}) }],
      llm: { providers: [{ name: 'test', baseUrl: url, models: ['test'] }] },
      concurrency: { steps: CONCURRENCY * 2, llm: CONCURRENCY },
      sink: { archive: dir },
    })
    const scheduled = exp.survey(form, { atTick: 0 })
    const summary = await exp.run({ ticks: 1 })
    const results = await scheduled.done
    const idealS = (LATENCY_MS * Math.ceil(agents / CONCURRENCY)) / 1000
    const surveyS = summary.tickMs.max / 1000
    const floorS = await floor(agents, url, form.schema)
    return {
      case: 'survey via LLM',
      agents,
      ticks: 1,
      llm_calls: summary.llm.calls,
      survey_s: round(surveyS, 2),
      ideal_s: round(idealS, 2),
      ratio: round(surveyS / idealS, 2),
      floor_s: round(floorS, 2),
      vs_floor: round(surveyS / floorS, 2),
      responded: results.responded,
      invalid_rate: round(results.invalidRate, 4),
      errors: summary.errors.count,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export const steering: Suite = {
  name: 'steering',
  title: `Steering: a replayed mutual-aid run vs the live one (LLM at ${LATENCY_MS} ms), and a survey of every agent through the LLM vs the ideal`,
  columns: [
    'case',
    'agents',
    'ticks',
    'llm_calls',
    'setup_s',
    'live_s',
    'replay_s',
    'speedup',
    'rows_compared',
    'rows_differing',
    'survey_s',
    'ideal_s',
    'ratio',
    'floor_s',
    'vs_floor',
    'responded',
    'invalid_rate',
    'errors',
    'checkpoint_s',
    'resume_s',
    'checkpoint_mb',
    'bytes_per_agent',
    'rss_mb',
  ],
  async run({ opts, progress, note }) {
    const rows: Row[] = []
    const replayN = opts.quick ? [1000] : [1000, 10_000]
    const ticks = opts.iterations ?? (opts.quick ? 4 : 10)
    for (const n of replayN) {
      rows.push(await replayRow(n, ticks))
      progress(`replay n=${n}: ${JSON.stringify(rows.at(-1))}`)
    }
    const surveyN = opts.n ?? (opts.quick ? [10_000] : opts.extended ? [100_000, 1_000_000] : [100_000])
    const server = await startLLMServers(LATENCY_MS, 2)
    try {
      for (const n of surveyN) {
        rows.push(await surveyRow(n, server.url))
        progress(`survey n=${n}: ${JSON.stringify(rows.at(-1))}`)
      }
    } finally {
      await server.stop()
    }
    const checkpointN = opts.quick ? [10_000] : opts.extended ? [100_000, 1_000_000] : [100_000]
    for (const n of checkpointN) {
      rows.push(await checkpointRow(n))
      progress(`checkpoint n=${n}: ${JSON.stringify(rows.at(-1))}`)
    }
    note(
      'checkpoint: agents with a specialty each (10,000 distinct) and a small state; checkpoint_s = exp.checkpoint(path) after tick 1 until the checkpoint is whole (the sink flushed first; state.bin, index.bin, registry.json, policy.state written and checksummed); resume_s = Experiment.resume(path) until the first resumed tick starts (files checked, population rebuilt, components loaded); the archive on the same disk',
    )
    note(
      `replay: examples/mutual-aid.ts (seed 42, ${ticks} ticks) in a child process each run, live against its own test server at ${LATENCY_MS} ms, then with MYRIAD_REPLAY; live_s and replay_s are the ticks (summary.wallS - setupS; setup, the same work in both, is setup_s); rows compared: ${COMPARED.join(', ')} without exp_id and latency_ms`,
    )
    note(
      `survey: a two-question form (likert, single) answered by llm.json for every agent at tick 0; the LLM is src/testing/llm-server.ts at ${LATENCY_MS} ms in 2 child processes, client concurrency ${CONCURRENCY}; survey_s = the tick's wall time; ideal = ${LATENCY_MS} ms x ceil(agents / ${CONCURRENCY}); floor_s = as many llm.json calls straight from one LLM client in the same run (the test server and the HTTP client on the same cores: what no runtime on this machine can beat)`,
    )
    return rows
  },
  verdicts(rows) {
    const out: string[] = []
    for (const r of rows) {
      if (r.case === 'replay mutual-aid') {
        out.push(verdict(r.rows_differing === 0, `replay n=${r.agents}: ${r.rows_differing} of ${r.rows_compared} rows differ from the live run (target 0)`))
        out.push(verdict(Number(r.speedup) >= 10, `replay n=${r.agents}: ${r.speedup}x faster than live (target >= 10x)`))
      } else if (r.case === 'checkpoint + resume') {
        out.push(verdict(Number(r.checkpoint_s) <= 10, `checkpoint n=${r.agents}: ${r.checkpoint_s} s, ${r.bytes_per_agent} bytes per agent (target <= 10 s)`))
        out.push(verdict(Number(r.resume_s) <= 10, `resume n=${r.agents}: ${r.resume_s} s (target <= 10 s)`))
      } else {
        out.push(
          verdict(
            Number(r.ratio) <= 1.2,
            `survey n=${r.agents}: ${r.survey_s} s = ${r.ratio}x the ideal ${r.ideal_s} s (target <= 1.2x; the LLM client alone, the floor here, takes ${r.floor_s} s: ${r.vs_floor}x)`,
          ),
        )
      }
    }
    return out
  },
}
