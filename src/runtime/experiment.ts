// `Experiment`: runs a population on the native core. Setup builds the population's columns,
// opens the sink, one bus connection per group, the LLM client and (when agents have specialties)
// the embedder, specialty index, registry and policy; then each tick runs the due turns through
// one scheduler, delivers the tick's messages, lets the policy learn and records the tick.
import { EventEmitter } from 'node:events'
import { rmSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'

import { Bus } from '../bus/index.js'
import { MyriadError, parseOptions } from '../errors/index.js'
import { LLM } from '../llm/index.js'
import type { SemanticIndex } from '../matching/index.js'
import type { Policy } from '../policy/index.js'
import type { Registry } from '../registry/index.js'
import { Sink } from '../sink/index.js'
import { AgentLLMs } from './agent-llm.js'
import { runAsync } from './async-clock.js'
import { runLockstep } from './lockstep.js'
import { Mailbox } from './mailbox.js'
import { MemoryStore } from './memory.js'
import { type ExperimentOptions, ExperimentOptionsSchema, type ResolvedExperimentOptions } from './options.js'
import { Population } from './population.js'
import { hash32, mix32 } from './random.js'
import { Recorder } from './recording.js'
import { type Manifest, type ManifestHead, checkpointsIn, openCheckpoint, writeCheckpoint } from './checkpoint-file.js'
import { differences, fingerprint, readState, restoreState, rewindRecords, saveParts, sinkPosition } from './checkpoint.js'
import { Replay } from './replay.js'
import { Run } from './run.js'
import { type Matching, collectSpecialties, openMatching } from './setup.js'
import { type RecordsAt, type RunSummary, type TickInfo, summarize } from './summary.js'
import { InterviewDesk } from './interviews.js'
import { type ScheduledSurvey, SurveyDesk, type SurveyTarget } from './surveys.js'
import { type Intervention, World, whoColumn } from './world.js'
import type { Survey, SurveyResults } from '../surveys/index.js'

export interface RunOptions {
  /** Ticks to run (lockstep), or turns per agent (async). */
  ticks: number
}

type Phase = 'idle' | 'running' | 'done'

/** Where a run is, read at any moment (for progress displays): cheap, a few counters. */
export interface Progress {
  phase: 'idle' | 'setup' | 'running' | 'done'
  /** Agents in the population (0 before setup has built it). */
  agents: number
  /** Ticks finished. */
  ticks: number
  /** Turns finished, over the run. */
  turns: number
  /** Failed turns, over the run. */
  errors: number
  /** Messages sent, over the run. */
  messages: number
  /** LLM calls made, and in flight now. */
  llmCalls: number
  llmInFlight: number
}

/** From this many agents a run widens V8's young generation (see `widenYoungGeneration`). */
const LARGE_POPULATION = 50_000
const YOUNG_GENERATION_MB = 64

/**
 * A tick of a large population makes short-lived objects (turn contexts, rows, messages) faster
 * than V8's default 16 MB semi-spaces let them die young: they are promoted and pile up as
 * old-generation garbage between full collections. At 1,000,000 agents, 64 MB semi-spaces took
 * the peak heap from ~1.3 GB to ~0.6 GB and a tick from ~7 s to ~5 s (docs/benchmarks/
 * simulation.md). A process started with its own --max-semi-space-size keeps it.
 */
function widenYoungGeneration(): void {
  const flags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`
  if (!/semi[-_]space/.test(flags)) setFlagsFromString(`--max-semi-space-size=${YOUNG_GENERATION_MB}`)
}

export class Experiment extends EventEmitter<{ tick: [TickInfo] }> {
  readonly options: ResolvedExperimentOptions
  /** This run's id: part of the record's experiment id and of the archive directory. */
  readonly runId: string
  private phase: Phase = 'idle'
  private readonly stopping = new AbortController()
  private pop: Population | undefined
  private matching: Matching | undefined
  private current: { run: Run; llm: LLM | undefined; replaying: boolean; mailbox: Mailbox } | undefined
  /** The first tick that has not started: what surveys, interviews and interventions can still be for. */
  private nextTick = 0
  private readonly surveys: SurveyDesk
  private readonly interviews = new InterviewDesk(() => this.expId)
  private readonly interventions: { at?: number; every?: number; fn: Intervention }[] = []
  /** The checkpoint this experiment resumes (`Experiment.resume`). */
  private resumeFrom: { dir: string; manifest: Manifest } | undefined
  /** Checkpoints asked for with `checkpoint(path)`, written at the end of the tick in flight. */
  private readonly requested: { path: string; resolve: (path: string) => void; reject: (error: unknown) => void }[] = []
  private lastCheckpoint: string | undefined

  constructor(options: ExperimentOptions) {
    super()
    this.options = parseOptions(ExperimentOptionsSchema, options, 'Experiment options')
    const stamp = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z')
    this.runId = `${stamp}-${(mix32(hash32(`${process.pid}:${performance.now()}`)) >>> 0).toString(36).slice(0, 6)}`
    this.surveys = new SurveyDesk(() => this.expId, this.options.seed)
  }

  /** Steering (surveys, interviews, interventions) needs ticks that every agent shares. */
  private steerable(what: string): void {
    if (this.options.clock.mode !== 'lockstep') throw new MyriadError('ERR_EXPERIMENT_STATE', `${what} needs the lockstep clock (this experiment runs async)`)
    if (this.phase === 'done') throw new MyriadError('ERR_EXPERIMENT_STATE', `${what}: this experiment has run`)
  }

  /**
   * Runs `fn(world)` at the start of `tick`, before its turns (see World). A tick the run has
   * started or passed is `ERR_TICK_PAST`.
   */
  at(tick: number, fn: Intervention): this {
    this.steerable('at(tick, fn)')
    if (!Number.isInteger(tick) || tick < 0) throw new MyriadError('ERR_INVALID_ARG', `at(tick, fn): tick must be a non-negative integer, got ${String(tick)}`)
    if (typeof fn !== 'function') throw new MyriadError('ERR_INVALID_ARG', 'at(tick, fn): fn must be a function of the world')
    if (tick < this.nextTick) throw new MyriadError('ERR_TICK_PAST', `at(${tick}, fn): the run is past tick ${tick} (the next tick is ${this.nextTick})`)
    // A resumed run's script adds what it added before: an intervention before the checkpoint's tick happened then.
    this.interventions.push({ at: tick, fn })
    return this
  }

  /** Runs `fn(world)` at the start of every tick that is a multiple of `n` (0, n, 2n, ...) from the next one on. */
  every(n: number, fn: Intervention): this {
    this.steerable('every(n, fn)')
    if (!Number.isInteger(n) || n < 1) throw new MyriadError('ERR_INVALID_ARG', `every(n, fn): n must be a positive integer, got ${String(n)}`)
    if (typeof fn !== 'function') throw new MyriadError('ERR_INVALID_ARG', 'every(n, fn): fn must be a function of the world')
    this.interventions.push({ every: n, at: this.nextTick, fn })
    return this
  }

  /**
   * Sends `survey` to the agents `target` names at the start of its tick (default: the next).
   * Each agent answers in that tick's turn; `done` resolves once all have (or the run ended).
   */
  survey(survey: Survey, target: SurveyTarget = {}): ScheduledSurvey {
    this.steerable('survey(...)')
    if (this.pop) {
      const unknown = (target.agents ?? []).filter((id) => this.pop?.slotOf(id) === undefined)
      if (unknown.length > 0)
        throw new MyriadError(
          'ERR_UNKNOWN_AGENT',
          `survey '${survey?.name}': ${unknown.slice(0, 5).join(', ')} ${unknown.length === 1 ? 'is not an agent' : 'are not agents'} of this experiment`,
        )
      if (this.current && !this.current.llm && !this.current.replaying && this.pop.types.some((t) => !t.on['user-survey'])) {
        throw new MyriadError(
          'ERR_LLM_NO_PROVIDER',
          `survey '${survey?.name}': agents without a user-survey handler answer through the LLM, and the experiment has none`,
        )
      }
    }
    const scheduled = this.surveys.schedule(survey, target, this.nextTick)
    return scheduled
  }

  /** The aggregates of the latest delivery of survey `name`, as far as its answers are in. */
  surveyResults(name: string): SurveyResults | undefined {
    return this.surveys.results(name)
  }

  /**
   * Asks one agent `text` on `user-chat` at the start of the next tick; resolves with its reply
   * (its handler's, or the LLM's as the agent). An unknown agent is `ERR_UNKNOWN_AGENT`, a parked
   * one `ERR_AGENT_PARKED`.
   */
  interview(agentId: string, text: string): Promise<string> {
    try {
      this.steerable('interview(...)')
      if (typeof agentId !== 'string') throw new MyriadError('ERR_INVALID_ARG', 'interview(agentId, text): agentId must be a string')
      if (typeof text !== 'string' || text.length === 0) throw new MyriadError('ERR_INVALID_ARG', 'interview(agentId, text): text must be a non-empty string')
      const slot = this.pop?.slotOf(agentId)
      if (this.pop && slot === undefined) throw new MyriadError('ERR_UNKNOWN_AGENT', `interview: '${agentId}' is not an agent of this experiment`)
      if (this.pop && slot !== undefined && this.pop.parked[slot])
        throw new MyriadError('ERR_AGENT_PARKED', `interview: ${agentId} is parked and takes no more turns`)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.interviews.ask(agentId, text)
  }

  /** The record's experiment id: `<name>/<runId>`. */
  get expId(): string {
    return `${this.options.name}/${this.runId}`
  }

  /**
   * Ends the run cleanly: after the tick in flight (lockstep) or the turns in flight (async), with
   * everything recorded flushed before `run` resolves.
   */
  stop(): void {
    if (!this.stopping.signal.aborted) this.stopping.abort(new MyriadError('ERR_EXPERIMENT_STATE', 'the experiment was stopped'))
  }

  /**
   * An experiment that goes on from the checkpoint at `path` (one written by `checkpoint` or by the
   * `checkpoint` option; a directory of them gives its newest): `run({ ticks })` then runs the
   * ticks from the checkpoint's to `ticks`, recording under the same experiment id, as the run
   * that wrote it would have. `options` are the run's (agent types and functions cannot be
   * saved): what must match the checkpoint and does not is `ERR_CHECKPOINT_MISMATCH` naming the
   * fields; a damaged checkpoint `ERR_CHECKPOINT_CORRUPT`, a newer format `ERR_CHECKPOINT_VERSION`.
   */
  static async resume(path: string, options: ExperimentOptions): Promise<Experiment> {
    const { dir, manifest } = await openCheckpoint(path)
    const exp = new Experiment(options)
    const differ = differences(manifest.fingerprint, fingerprint(exp.options))
    if (differ.length > 0) throw new MyriadError('ERR_CHECKPOINT_MISMATCH', `resume ${dir}: the options differ from the checkpoint's: ${differ.join('; ')}`)
    ;(exp as { runId: string }).runId = manifest.runId
    exp.resumeFrom = { dir, manifest }
    return exp
  }

  /**
   * Writes a checkpoint to `path` at the end of the tick in flight (lockstep); resolves with the
   * checkpoint's directory once it is whole. Call it while the experiment runs (from a `'tick'`
   * listener, say); the `checkpoint` option writes them every n ticks.
   */
  checkpoint(path: string): Promise<string> {
    if (typeof path !== 'string' || path.length === 0)
      return Promise.reject(new MyriadError('ERR_INVALID_ARG', 'checkpoint(path): path must be a non-empty string'))
    if (this.options.clock.mode !== 'lockstep') return Promise.reject(new MyriadError('ERR_EXPERIMENT_STATE', 'checkpoint(path) needs the lockstep clock'))
    if (this.phase !== 'running')
      return Promise.reject(
        new MyriadError('ERR_EXPERIMENT_STATE', `checkpoint(path): the experiment is ${this.phase === 'idle' ? 'not running yet' : 'done'}`),
      )
    return new Promise((done, fail) => this.requested.push({ path: resolve(path), resolve: done, reject: fail }))
  }

  /** The routing components (present once `run` has set up agents with a specialty). */
  get registry(): Registry | undefined {
    return this.matching?.registry
  }
  get policy(): Policy | undefined {
    return this.matching?.policy
  }
  get index(): SemanticIndex | undefined {
    return this.matching?.index
  }

  /** Where the run is now: for a progress display, read as often as you like. */
  progress(): Progress {
    const c = this.current
    const phase = this.phase === 'running' ? (c ? 'running' : 'setup') : this.phase
    return {
      phase,
      agents: this.pop?.size ?? 0,
      ticks: c?.run.ticks.length ?? 0,
      turns: c?.run.turns ?? 0,
      errors: c?.run.errorCount ?? 0,
      messages: c?.mailbox.stats.sent ?? 0,
      llmCalls: c?.run.services.llms.totals.calls ?? 0,
      llmInFlight: c?.llm?.metrics().inflight ?? 0,
    }
  }

  /** `{ id, state }` of the population (of one agent type), between and after ticks. */
  states(agentName?: string): { id: string; state: unknown }[] {
    const pop = this.pop
    if (!pop) return []
    const out: { id: string; state: unknown }[] = []
    for (let i = 0; i < pop.size; i++) {
      if (agentName === undefined || pop.typeOfAgent(i).name === agentName) out.push({ id: pop.ids[i], state: pop.states[i] })
    }
    return out
  }

  async run(options: RunOptions): Promise<RunSummary> {
    if (this.phase !== 'idle') {
      throw new MyriadError(
        'ERR_EXPERIMENT_STATE',
        this.phase === 'running' ? 'the experiment is already running' : 'this experiment has run; make a new Experiment for another run',
      )
    }
    const ticks = options?.ticks
    if (!Number.isInteger(ticks) || ticks < 0) throw new MyriadError('ERR_INVALID_ARG', `run({ ticks }) needs a non-negative integer, got ${String(ticks)}`)
    if (this.options.checkpoint && this.options.clock.mode !== 'lockstep') {
      throw new MyriadError('ERR_EXPERIMENT_STATE', 'the checkpoint option needs the lockstep clock (an async run has no tick that every agent has finished)')
    }
    this.phase = 'running'
    try {
      return await this.execute(ticks)
    } finally {
      this.phase = 'done'
    }
  }

  private async execute(ticks: number): Promise<RunSummary> {
    const o = this.options
    const started = performance.now()
    // Everything that can be refused is checked before anything is opened or written.
    const resumed = this.resumeFrom
    // Read (and so checked) before anything is opened: a checkpoint that cannot be used changes nothing.
    const saved = resumed ? readState(resumed.dir) : undefined
    const pop = await Population.build(o.population, o.seed, saved)
    const specialties = collectSpecialties(pop)
    if (pop.size >= LARGE_POPULATION) widenYoungGeneration()
    const { replay: replaySource, onMiss, ...llmConfig } = o.llm === undefined || o.llm instanceof LLM ? { replay: undefined, onMiss: 'error' } : o.llm
    const replay = replaySource === undefined ? undefined : { from: await Replay.load(replaySource), live: onMiss === 'live' }
    const llm =
      o.llm instanceof LLM
        ? o.llm
        : 'providers' in llmConfig && llmConfig.providers
          ? new LLM({ ...llmConfig, providers: llmConfig.providers, ...(o.concurrency.llm ? { concurrency: o.concurrency.llm } : {}) })
          : undefined
    const ownsLLM = llm !== undefined && !(o.llm instanceof LLM)
    this.pop = pop
    const given = o.sink ?? defaultSink(o.name, this.runId)
    const where = 'archive' in given ? { archive: resolve(given.archive) } : given
    if (resumed) await rewindRecords(where, resumed.manifest)
    const sink = await Sink.open('archive' in where ? { dir: where.archive } : { dsn: where.postgres, schema: where.schema })
    const recorder = new Recorder(sink, this.expId)
    const groups = Math.max(1, Math.min(o.groups ?? availableParallelism(), pop.size || 1))
    const groupSize = Math.ceil(pop.size / groups) || 1
    const buses: Bus[] = []
    /** LLM clients that interventions made from a configuration: the run closes them. */
    const madeLLMs: LLM[] = []
    try {
      for (let g = 0; g < groups; g++) {
        const agents = pop.ids.slice(g * groupSize, (g + 1) * groupSize)
        buses.push(await Bus.connect({ ...busOptions(o.bus), exp: `${o.name}.${this.runId}`, group: `g${g}`, agents }))
      }
      const lockstep = o.clock.mode === 'lockstep'
      const mailbox = new Mailbox(pop, buses, (slot) => Math.floor(slot / groupSize), recorder, o.seed, !lockstep)
      const matching = await openMatching(pop, specialties, o, this.expId, resumed?.dir)
      this.matching = matching
      const start = resumed?.manifest.start ?? o.clock.start ?? Date.now()
      const memory = new MemoryStore(matching.embedder)
      const llms = new AgentLLMs(llm, recorder, o.llmBudget, pop.size, replay)
      const unknown = this.surveys.unknownIds(pop)
      if (unknown.length > 0) throw new MyriadError('ERR_UNKNOWN_AGENT', `a survey names ${unknown.slice(0, 5).join(', ')}, not agents of this experiment`)
      if (!llm && !replay && this.surveys.needsLLM(pop)) {
        throw new MyriadError(
          'ERR_LLM_NO_PROVIDER',
          'a survey is scheduled, agents without a user-survey handler answer through the LLM, and the experiment has none',
        )
      }
      const host = {
        run: undefined as unknown as Run,
        params: Object.freeze({ ...o.params }),
        setLLM: (next: LLM) => {
          llms.replace(next)
          madeLLMs.push(next)
        },
      }
      const run = new Run(
        {
          pop,
          mailbox,
          recorder,
          llms,
          router: matching.router,
          memory,
          log: (agent, tick, args) => console.log(`[${o.name} t${tick}] ${agent}:`, ...args),
          surveys: this.surveys,
          interviews: this.interviews,
          params: () => host.params,
        },
        o,
        this.expId,
        !lockstep,
      )
      host.run = run
      if (saved) {
        host.params = Object.freeze(await restoreState(saved, run))
        this.nextTick = resumed?.manifest.tick ?? 0
      } else this.recordStart(pop, recorder, start)
      await recorder.flush()
      this.current = { run, llm, replaying: replay !== undefined, mailbox }
      const setupS = (performance.now() - started) / 1000
      const hooks = {
        stopping: this.stopping.signal,
        timeOf: (tick: number) => start + tick * o.clock.tickMs,
        onTick: (info: TickInfo) => this.emit('tick', info),
        beforeTick: (tick: number, now: number) => this.steer(host, tick, now),
        afterTick: (tick: number) => this.checkpointAfter(tick, run, matching, where, start, host.params),
        first: resumed?.manifest.tick,
      }
      await (lockstep ? runLockstep(run, ticks, hooks) : runAsync(run, ticks, hooks))
      if (run.failure !== undefined) throw run.failure
      await recorder.sync()
      const records: RecordsAt =
        'archive' in where
          ? { archive: where.archive, rows: recorder.stats.rows, refused: recorder.stats.refused }
          : { postgres: redact(where.postgres), schema: where.schema ?? 'myriad', rows: recorder.stats.rows, refused: recorder.stats.refused }
      return summarize({
        exp: this.expId,
        runId: this.runId,
        ticks: run.ticks,
        turns: run.turns,
        messages: mailbox.stats,
        llm: { ...run.services.llms.totals, ...(replay ? { replay: { ...replay.from.stats } } : {}) },
        errors: run.errors,
        errorCount: run.errorCount,
        parked: run.parked,
        setupS,
        wallS: (performance.now() - started) / 1000,
        records,
        refusals: recorder.stats.refusals,
        stopped: this.stopping.signal.aborted,
        routing: matching.router?.stats,
        memory: { agents: memory.agents, texts: memory.texts, embedded: memory.embedded },
        resumedFrom: resumed?.manifest.tick,
        checkpoint: this.lastCheckpoint,
      })
    } finally {
      for (const r of this.requested.splice(0)) r.reject(new MyriadError('ERR_EXPERIMENT_STATE', `checkpoint(${r.path}): the run ended before the tick did`))
      this.surveys.close()
      this.interviews.close()
      await Promise.allSettled(buses.map((b) => b.close()))
      if (ownsLLM) await llm?.close()
      await Promise.allSettled(madeLLMs.map((l) => l.close()))
      await sink.close()
    }
  }

  /** After a tick: the checkpoints asked for, and the automatic one when it is due. */
  private async checkpointAfter(
    tick: number,
    run: Run,
    matching: Matching,
    where: { archive: string } | { postgres: string; schema?: string },
    start: number,
    params: Readonly<Record<string, unknown>>,
  ): Promise<void> {
    const auto = this.options.checkpoint
    const next = tick + 1
    const paths = this.requested.splice(0)
    // A run stopped (stop(), Ctrl-C) leaves a checkpoint of where it stopped, to resume from.
    if (auto && (next % auto.every === 0 || this.stopping.signal.aborted))
      paths.push({ path: join(resolve(auto.dir), `tick-${next}`), resolve: () => {}, reject: (e) => run.fail(e) })
    if (paths.length === 0) return
    await run.services.recorder.sync()
    const o = this.options
    const head: ManifestHead = { name: o.name, runId: this.runId, exp: this.expId, tick: next, start, fingerprint: fingerprint(o), sink: sinkPosition(where) }
    for (const p of paths) {
      try {
        await writeCheckpoint(p.path, head, (dir) => saveParts(dir, run, matching, { ...params }))
        this.lastCheckpoint = p.path
        p.resolve(p.path)
      } catch (error) {
        p.reject(error)
      }
    }
    if (auto) for (const old of checkpointsIn(resolve(auto.dir)).slice(0, -auto.keep)) rmSync(old, { recursive: true, force: true })
  }

  /** The start of a lockstep tick: its interventions in the order they were added, then its surveys and interviews. */
  private async steer(host: { run: Run; params: Readonly<Record<string, unknown>>; setLLM: (llm: LLM) => void }, tick: number, now: number): Promise<void> {
    const { pop, mailbox, recorder } = host.run.services
    for (const i of this.interventions) {
      const due = i.every !== undefined ? tick >= (i.at ?? 0) && tick % i.every === 0 : i.at === tick
      if (due) await i.fn(new World(host, tick, now))
    }
    for (const d of this.surveys.deliver(tick, pop, mailbox)) {
      recorder.add('events', { exp_id: this.expId, ts: now, tick, kind: 'survey', what: { survey: d.survey, asked: d.asked }, who: whoColumn(d.ids, d.asked) })
    }
    this.interviews.deliver(tick, now, pop, mailbox, recorder)
    this.nextTick = tick + 1
  }

  private recordStart(pop: Population, recorder: Recorder, ts: number): void {
    for (let i = 0; i < pop.size; i++) {
      recorder.add('agents', {
        exp_id: this.expId,
        agent_id: pop.ids[i],
        ts,
        tick: -1,
        profile: { type: pop.typeOfAgent(i).name, ...(pop.profiles[i] as object) },
      })
      recorder.add('states', { exp_id: this.expId, agent_id: pop.ids[i], ts, tick: -1, state: pop.states[i] ?? null })
    }
  }
}

/**
 * Where records go without a `sink` option: Postgres when `MYRIAD_DSN` is set, else the Avro
 * archive under `MYRIAD_RUNS_DIR` (default `./runs`), one directory per run.
 */
function defaultSink(name: string, runId: string): { archive: string } | { postgres: string; schema?: string } {
  const dsn = process.env.MYRIAD_DSN
  if (dsn) return { postgres: dsn }
  return { archive: join(process.env.MYRIAD_RUNS_DIR ?? 'runs', name, runId) }
}

function busOptions(bus: ResolvedExperimentOptions['bus']): Record<string, unknown> {
  if (bus === 'local') return { transport: 'local' }
  if (bus === 'embedded') return { transport: 'mqtt' }
  if (typeof bus === 'string') return { transport: 'mqtt', url: bus }
  return bus
}

/** A database URL without its password, for summaries and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '(unparseable url)'
  }
}
