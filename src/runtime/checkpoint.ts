// What a checkpoint holds of a run, taken between two lockstep ticks: the population's states,
// profiles and random streams, the next tick's inboxes, memories, the router's open decisions,
// the counters, the parameters; the native components save themselves beside it. And what a
// resume does before its first tick: check the options against the checkpoint's, and take the
// records back to where they were when it was taken.
import { existsSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { deserialize, serialize } from 'node:v8'

import { MyriadError } from '../errors/index.js'
import { callNative, native } from '../native/index.js'
import type { Matching } from './setup.js'
import { type Manifest, PARTS, type SinkPosition } from './checkpoint-file.js'
import type { MailboxSnapshot } from './mailbox.js'
import type { MemorySnapshot } from './memory.js'
import type { ResolvedExperimentOptions } from './options.js'
import type { RouterSnapshot } from './routing.js'
import type { RecordingStats } from './recording.js'
import type { Run, RunSnapshot } from './run.js'

interface RuntimeState {
  states: unknown[]
  profiles: unknown[]
  parked: Uint8Array
  failures: Uint8Array
  random: Uint32Array
  run: RunSnapshot
  mailbox: MailboxSnapshot
  memory: MemorySnapshot
  router: RouterSnapshot | undefined
  llms: ReturnType<Run['services']['llms']['snapshot']>
  params: Record<string, unknown>
  recorder: RecordingStats
}

/**
 * The options a resumed run must share with the checkpoint's: who takes part, the seed, the
 * clock and the routing components. (The LLM, the sink's address, timeouts and concurrency may
 * change: they do not change what the records say.)
 */
export function fingerprint(o: ResolvedExperimentOptions): Record<string, unknown> {
  return {
    name: o.name,
    seed: o.seed,
    population: o.population.map((e) => ({ agent: e.agent?.name, count: e.count, ids: e.ids !== undefined })),
    'clock.mode': o.clock.mode,
    'clock.tickMs': o.clock.tickMs,
    groups: o.groups ?? null,
    llmBudget: o.llmBudget,
    maxConsecutiveFailures: o.maxConsecutiveFailures,
    matching: { storage: o.matching.storage, registry: o.matching.registry, policy: o.matching.policy, model: o.matching.embedder.model ?? null },
  }
}

/** The fields of `now` that differ from the checkpoint's, with both values: empty when they match. */
export function differences(saved: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(saved), ...Object.keys(now)])
  return [...keys]
    .filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(now[k]))
    .map((k) => `${k}: checkpoint ${JSON.stringify(saved[k])}, now ${JSON.stringify(now[k])}`)
}

/** Every archive file under `dir`, by path relative to it. */
function archiveFiles(dir: string, base = dir, out: Record<string, number> = {}): Record<string, number> {
  if (!existsSync(dir)) return out
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) archiveFiles(path, base, out)
    else if (entry.name.endsWith('.avro')) out[relative(base, path)] = statSync(path).size
  }
  return out
}

/** Where the records stand (call it after `recorder.sync()`: every row durable). */
export function sinkPosition(where: { archive: string } | { postgres: string; schema?: string }): SinkPosition {
  return 'archive' in where ? { archive: where.archive, files: archiveFiles(where.archive) } : { postgres: true, schema: where.schema ?? 'myriad' }
}

/**
 * Takes the records back to the checkpoint: archive files cut to their length then (those made
 * since removed), or the Postgres rows of the checkpoint's tick and later deleted. What the run
 * that died wrote after its checkpoint is written again by the resumed run, once.
 */
export async function rewindRecords(where: { archive: string } | { postgres: string; schema?: string }, manifest: Manifest): Promise<void> {
  const saved = manifest.sink
  if ('archive' in where) {
    if (!('archive' in saved)) throw new MyriadError('ERR_CHECKPOINT_MISMATCH', 'sink: the checkpoint recorded to Postgres, this run to an archive')
    const now = archiveFiles(where.archive)
    for (const [file, size] of Object.entries(saved.files)) {
      if ((now[file] ?? -1) < size) {
        throw new MyriadError(
          'ERR_CHECKPOINT_MISMATCH',
          `sink: ${join(where.archive, file)} is shorter than when the checkpoint was taken (${now[file] ?? 'missing'} < ${size} bytes)`,
        )
      }
    }
    for (const [file, size] of Object.entries(now)) {
      const path = join(where.archive, file)
      if (saved.files[file] === undefined) rmSync(path)
      else if (size > saved.files[file]) truncateSync(path, saved.files[file])
    }
    return
  }
  if (!('postgres' in saved)) throw new MyriadError('ERR_CHECKPOINT_MISMATCH', 'sink: the checkpoint recorded to an archive, this run to Postgres')
  await callNative(() => native.rewindPostgres(where.postgres, where.schema, manifest.exp, manifest.tick))
}

/** Writes the runtime's part (`state.bin`) and the native components' files into `dir`. */
export async function saveParts(dir: string, run: Run, matching: Matching | undefined, params: Record<string, unknown>): Promise<void> {
  const { pop, mailbox, memory, router, llms, recorder } = run.services
  const state: RuntimeState = {
    states: pop.states,
    profiles: pop.profiles,
    parked: pop.parked,
    failures: pop.failures,
    random: pop.random.snapshot(),
    run: run.snapshot(),
    mailbox: mailbox.snapshot(run.ticks.length),
    memory: memory ? memory.snapshot() : { agents: [], embedded: 0, texts: 0 },
    router: router?.snapshot(),
    llms: llms.snapshot(),
    params,
    recorder: { ...recorder.stats, refusals: [...recorder.stats.refusals] },
  }
  writeFileSync(join(dir, PARTS.state), serialize(state))
  await Promise.all([
    matching?.index?.save(join(dir, PARTS.index)),
    matching?.registry?.save(join(dir, PARTS.registry)),
    matching?.policy?.saveState(join(dir, PARTS.policy)),
  ])
}

/** Reads `state.bin` (its checksum was checked when the checkpoint was opened). */
export function readState(dir: string): RuntimeState {
  try {
    return deserialize(readFileSync(join(dir, PARTS.state))) as RuntimeState
  } catch (error) {
    throw new MyriadError('ERR_CHECKPOINT_CORRUPT', `${join(dir, PARTS.state)} is not a valid checkpoint: ${(error as Error).message}; nothing was loaded`)
  }
}

/**
 * Puts the run's services where the checkpoint had them; the population already holds the
 * checkpoint's states and profiles (`Population.build(entries, seed, state)` took them, and
 * checked the count).
 */
export async function restoreState(state: RuntimeState, run: Run): Promise<Record<string, unknown>> {
  const { pop, mailbox, memory, router, llms, recorder } = run.services
  pop.parked.set(state.parked)
  pop.failures.set(state.failures)
  pop.random.restore(state.random)
  run.restore(state.run)
  mailbox.restore(state.run.ticks.length, state.mailbox)
  await memory?.restore(state.memory)
  if (router && state.router) router.restore(state.router)
  llms.restore(state.llms)
  Object.assign(recorder.stats, state.recorder)
  return state.params
}
