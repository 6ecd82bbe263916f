// Checkpoint and resume on the real components (local bus, Avro archive and Postgres, the native
// index, registry and policy, the embedder, the test LLM server): a run killed with SIGKILL and
// resumed from its last checkpoint writes the rows of the run that was not killed; a damaged,
// truncated, newer or mismatched checkpoint is refused and nothing is changed.
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

import test from 'ava'
import { z } from 'zod'

import { Experiment, type MyriadError, Policy, type SinkTable, defineAgent, readArchive, readPostgres } from '../../src/index.js'
import { type LLMServer, startLLMServer } from '../../src/testing/index.js'
import { DSN, type Row, archiveDir, cleanup, comparable } from './helpers.js'

const FIXTURE = join(import.meta.dirname, 'fixtures', 'checkpointed.ts')
const TABLES: SinkTable[] = ['agents', 'states', 'messages', 'llm_calls', 'events', 'errors', 'metrics']
/** Metrics that are measured, not simulated. */
const TIMINGS = new Set(['tick_ms', 'llm_latency_p50_ms', 'llm_latency_p99_ms'])

let server: LLMServer
test.before(async () => {
  server = await startLLMServer({ latency: { fixedMs: 2 } })
})
test.after.always(() => server?.close())

interface Child {
  process: ChildProcess
  /** Resolves with the tick lines and the summary line, or rejects on a non-zero exit. */
  done: Promise<{ ticks: number[]; summary: Record<string, unknown> | undefined; code: number | null; signal: NodeJS.Signals | null }>
}

function runFixture(dir: string, env: Record<string, string> = {}, onTick?: (tick: number, child: ChildProcess) => void): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: { ...process.env, MYRIAD_DIR: dir, MYRIAD_LLM_URL: server.url, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (d) => {
    stderr += d
  })
  const ticks: number[] = []
  let summary: Record<string, unknown> | undefined
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const tick = /^tick (\d+)$/.exec(line)
    if (tick) {
      ticks.push(Number(tick[1]))
      onTick?.(Number(tick[1]), child)
    } else if (line.startsWith('{')) summary = JSON.parse(line)
  })
  const done = new Promise<Awaited<Child['done']>>((resolve, reject) =>
    child.on('exit', (code, signal) =>
      code !== 0 && signal !== 'SIGKILL' ? reject(new Error(`exit ${code}: ${stderr}`)) : resolve({ ticks, summary, code, signal }),
    ),
  )
  return { process: child, done }
}

/** Every table's rows, from the archive under `dir`, or from Postgres for experiment `exp`. */
async function records(dir: string, exp?: string): Promise<Record<string, Row[]>> {
  const out: Record<string, Row[]> = {}
  for (const table of TABLES) {
    const rows = (exp ? await readPostgres(DSN, { table, exp, schema: 'checkpoint_test' }) : await readArchive(join(dir, 'records'), { table })) as Row[]
    out[table] = comparable(table === 'metrics' ? rows.filter((r) => !TIMINGS.has(r.name as string)) : rows)
  }
  return out
}

test('a run killed with SIGKILL at a random tick and resumed writes exactly the rows of the run that was not killed', async (t) => {
  const [whole, killed] = [archiveDir('ckpt-whole'), archiveDir('ckpt-killed')]
  const uninterrupted = await runFixture(whole).done
  t.deepEqual(uninterrupted.ticks, [...Array(12).keys()])
  // Killed right after a tick between the checkpoints (every 2 ticks), so the checkpoint may be mid-write.
  const at = 3 + Math.floor(Math.random() * 7)
  t.log(`killed after tick ${at}`)
  const first = await runFixture(killed, {}, (tick, child) => {
    if (tick === at) child.kill('SIGKILL')
  }).done
  t.is(first.signal, 'SIGKILL')
  t.is(first.summary, undefined, 'the run did not finish')
  const resumed = await runFixture(killed, { MYRIAD_RESUME: '1' }).done
  t.is(resumed.code, 0)
  const from = resumed.summary?.resumedFrom as number
  t.true(from >= 2 && from <= at + 1 && from % 2 === 0, `resumed from tick ${from}`)
  t.deepEqual(
    resumed.ticks,
    [...Array(12 - from).keys()].map((i) => i + from),
  )
  t.like(resumed.summary, { ticks: 12, turns: uninterrupted.summary?.turns, errors: 0 })
  const [a, b] = [await records(whole), await records(killed)]
  t.true(a.messages.length > 50 && a.llm_calls.length > 20, `${a.messages.length} messages, ${a.llm_calls.length} LLM calls`)
  for (const table of TABLES) t.deepEqual(b[table], a[table], table)
  cleanup(whole)
  cleanup(killed)
})

test('recording to Postgres, a killed and resumed run writes the rows of the run that was not (those after its checkpoint deleted first)', async (t) => {
  const [whole, killed] = [archiveDir('ckpt-pg-whole'), archiveDir('ckpt-pg-killed')]
  const uninterrupted = await runFixture(whole).done
  const at = 3 + Math.floor(Math.random() * 7)
  t.log(`killed after tick ${at}`)
  await runFixture(killed, { MYRIAD_DSN: DSN }, (tick, child) => {
    if (tick === at) child.kill('SIGKILL')
  }).done
  const resumed = await runFixture(killed, { MYRIAD_DSN: DSN, MYRIAD_RESUME: '1' }).done
  t.like(resumed.summary, { ticks: 12, turns: uninterrupted.summary?.turns, errors: 0 })
  const [a, b] = [await records(whole), await records(killed, resumed.summary?.exp as string)]
  for (const table of TABLES) t.deepEqual(b[table], a[table], table)
  cleanup(whole)
  cleanup(killed)
})

test('a damaged, truncated or newer checkpoint, or other options, are refused naming why, and nothing is changed', async (t) => {
  const dir = archiveDir('ckpt-bad')
  await runFixture(dir).done
  const checkpoint = join(dir, 'checkpoints', 'tick-12')
  const records = join(dir, 'records')
  const sizes = () =>
    readdirSync(records, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => statSync(join(e.parentPath, e.name)).size)
  const before = sizes()
  const refused = async (path: string, code: string, what: RegExp, seed = '5') => {
    const error = await t.throwsAsync(resumeWith(path, dir, Number(seed)))
    t.is((error as MyriadError).code as string, code, error.message)
    t.regex(error.message, what)
    t.deepEqual(sizes(), before, 'the records are unchanged')
  }
  await refused(join(dir, 'checkpoints'), 'ERR_CHECKPOINT_MISMATCH', /seed: checkpoint 5, now 6/, '6')
  const state = join(checkpoint, 'state.bin')
  const bytes = readFileSync(state)
  bytes[bytes.length >> 1] ^= 0xff
  writeFileSync(state, bytes)
  await refused(checkpoint, 'ERR_CHECKPOINT_CORRUPT', /state\.bin is not a valid checkpoint: its SHA-256 does not match/)
  truncateSync(state, bytes.length - 100)
  await refused(checkpoint, 'ERR_CHECKPOINT_CORRUPT', /state\.bin is not a valid checkpoint: \d+ bytes, the manifest says \d+ \(truncated/)
  const manifest = join(checkpoint, 'manifest.json')
  writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('"version": 1', '"version": 99'))
  await refused(checkpoint, 'ERR_CHECKPOINT_VERSION', /format version 99; this Myriad reads versions up to 1: upgrade/)
  writeFileSync(manifest, '{ "format": "myr')
  await refused(checkpoint, 'ERR_CHECKPOINT_CORRUPT', /manifest\.json is not a valid checkpoint: unreadable/)
  await refused(join(dir, 'records'), 'ERR_CHECKPOINT_CORRUPT', /no manifest\.json in it/)
  cleanup(dir)
})

/** Resume in this process with the fixture's options (its agent type is re-declared here). */
async function resumeWith(path: string, dir: string, seed: number): Promise<unknown> {
  const Citizen = defineAgent({ name: 'citizen', profile: z.object({ topic: z.number().int() }), state: {}, specialty: () => 'x' })
  const exp = await Experiment.resume(path, {
    name: 'checkpointed',
    seed,
    population: [{ agent: Citizen, count: 120, profiles: (i) => ({ topic: i % 4 }) }],
    clock: { start: 1_800_000_000_000 },
    llm: { providers: [{ name: 'test', baseUrl: server.url, models: ['test'] }] },
    sink: { archive: join(dir, 'records') },
  })
  return exp.run({ ticks: 13 })
}

test('a policy state file round-trips through Policy.saveState / loadState; another file is ERR_CHECKPOINT_CORRUPT', async (t) => {
  const dir = archiveDir('policy-state')
  const policy = Policy.create({ seed: 3 })
  const states = new Float32Array(policy.stateDim * 4).map((_, i) => (i % 7) / 7)
  await policy.update({ states, actions: new Uint32Array([0, 1, 2, 3]), rewards: new Float32Array([1, 0, 1, 0]) })
  await policy.saveState(join(dir, 'p.state'))
  const back = await Policy.loadState(join(dir, 'p.state'))
  t.deepEqual((await back.decideBatch(states, { temperature: 1 })).actions, (await policy.decideBatch(states, { temperature: 1 })).actions)
  await policy.saveSafetensors(join(dir, 'w.safetensors'))
  const error = await t.throwsAsync(Policy.loadState(join(dir, 'w.safetensors')))
  t.is((error as MyriadError).code, 'ERR_CHECKPOINT_CORRUPT')
  cleanup(dir)
})
