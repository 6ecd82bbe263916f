// One run's shared state: the services every turn uses, and what happens after a turn (the state
// recorded if it changed, a failure recorded and counted, an agent parked). Both clocks drive it.
import { MyriadError } from '../errors/index.js'
import type { ResolvedExperimentOptions } from './options.js'
import type { Population } from './population.js'
import { hash32 } from './random.js'
import type { Recorder } from './recording.js'
import type { TurnOutcome } from './scheduler.js'
import type { TickInfo, TurnError } from './summary.js'
import type { TurnServices } from './turn.js'

/** The first failures listed in the summary (all of them are recorded). */
const ERRORS_LISTED = 100

/** What a checkpoint keeps of a run: its counters and each agent's last recorded state hash. */
export interface RunSnapshot {
  errors: TurnError[]
  parked: string[]
  ticks: TickInfo[]
  errorCount: number
  turns: number
  hashes: Uint32Array
}

export class Run {
  readonly errors: TurnError[] = []
  readonly parked: string[] = []
  readonly ticks: TickInfo[] = []
  errorCount = 0
  turns = 0
  /** A failure of the runtime itself (not of an agent's turn): the run ends with it. */
  failure: unknown
  /** A hash of each agent's state as last recorded: a state is recorded when it changed. */
  private readonly hashes: Uint32Array

  constructor(
    readonly services: TurnServices,
    readonly options: ResolvedExperimentOptions,
    readonly exp: string,
    /** Copy states when recording them (the async clock: a state may change again before it is written). */
    private readonly copyStates: boolean,
  ) {
    const pop = services.pop
    this.hashes = new Uint32Array(pop.size)
    for (let i = 0; i < pop.size; i++) this.hashes[i] = hash32(JSON.stringify(pop.states[i]) ?? 'null')
  }

  snapshot(): RunSnapshot {
    return {
      errors: [...this.errors],
      parked: [...this.parked],
      ticks: [...this.ticks],
      errorCount: this.errorCount,
      turns: this.turns,
      hashes: this.hashes.slice(),
    }
  }

  restore(s: RunSnapshot): void {
    this.errors.push(...s.errors)
    this.parked.push(...s.parked)
    this.ticks.push(...s.ticks)
    this.errorCount = s.errorCount
    this.turns = s.turns
    this.hashes.set(s.hashes)
  }

  fail(error: unknown): void {
    this.failure ??= error
  }

  get pop(): Population {
    return this.services.pop
  }
  get recorder(): Recorder {
    return this.services.recorder
  }

  /** After one turn of `slot` at `tick`: records what changed or what failed. Returns whether it failed. */
  finish(slot: number, tick: number, now: number, outcome: TurnOutcome): boolean {
    const pop = this.pop
    this.turns++
    if (outcome.ok) {
      pop.failures[slot] = 0
      this.recordState(slot, tick, now)
      return false
    }
    this.errorCount++
    const error = outcome.error
    const code = error instanceof MyriadError ? error.code : outcome.timedOut ? 'ERR_STEP_TIMEOUT' : 'ERR_AGENT_TURN'
    const message = error instanceof Error ? error.message : String(error)
    const stack = error instanceof Error ? error.stack : undefined
    if (this.errors.length < ERRORS_LISTED) this.errors.push({ agent: pop.ids[slot], tick, code, message, stack })
    this.recordError(slot, tick, now, 'turn', `${code}: ${message}${stack ? `\n${stack}` : ''}`)
    pop.failures[slot] = Math.min(255, pop.failures[slot] + 1)
    if (pop.failures[slot] >= this.options.maxConsecutiveFailures && !pop.parked[slot]) {
      this.park(slot, tick, now, `${pop.failures[slot]} failed turns in a row`)
    }
    return true
  }

  /**
   * Records the state of `slot` if it changed since it was last recorded; `copy` when the state
   * may change again before the row is written (an intervention's, before the tick's turns).
   */
  recordState(slot: number, tick: number, now: number, copy = this.copyStates): void {
    const pop = this.pop
    const json = JSON.stringify(pop.states[slot]) ?? 'null'
    const h = hash32(json)
    if (h !== this.hashes[slot]) {
      this.hashes[slot] = h
      const state = copy ? JSON.parse(json) : (pop.states[slot] ?? null)
      this.recorder.add('states', { exp_id: this.exp, agent_id: pop.ids[slot], ts: now, tick, state })
    }
  }

  /** The agent takes no more turns: listed in the summary, recorded in `errors`. */
  park(slot: number, tick: number, now: number, why: string): void {
    const pop = this.pop
    if (pop.parked[slot]) return
    pop.parked[slot] = 1
    this.parked.push(pop.ids[slot])
    this.recordError(slot, tick, now, 'runtime', `ERR_AGENT_PARKED: ${why}; the agent takes no more turns`)
  }

  private recordError(slot: number, tick: number, ts: number, comp: string, detail: string): void {
    this.recorder.add('errors', { exp_id: this.exp, ts, tick, agent_id: this.pop.ids[slot], comp, detail })
  }

  /** The tick's metrics rows, and its entry in the summary. */
  recordTick(ts: number, info: TickInfo): void {
    const row = (name: string, value: number) =>
      this.recorder.add('metrics', { exp_id: this.exp, ts, tick: info.tick, agent_id: null, name, value, labels: null })
    row('turns', info.turns)
    row('errors', info.errors)
    row('messages_sent', info.messages.sent)
    row('messages_delivered', info.messages.delivered)
    row('messages_failed', info.messages.failed)
    row('llm_calls', info.llmCalls)
    row('llm_latency_p50_ms', info.llmP50Ms)
    row('llm_latency_p99_ms', info.llmP99Ms)
    row('parked', info.parked)
    row('tick_ms', info.tickMs)
    this.ticks.push(info)
  }
}
