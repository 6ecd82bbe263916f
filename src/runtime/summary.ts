// What `run` resolves with: what happened, how long it took, and where the records are.
import type { DeliveryStats } from './mailbox.js'
import type { ReplayStats } from './replay.js'
import type { RoutingStats } from './routing.js'

export interface TickInfo {
  tick: number
  turns: number
  errors: number
  llmCalls: number
  llmP50Ms: number
  llmP99Ms: number
  /** This tick's messages (sent, delivered, failed, lost). */
  messages: DeliveryStats
  /** Agents parked so far. */
  parked: number
  tickMs: number
}

/** A failed turn: who, when, and what. */
export interface TurnError {
  agent: string
  tick: number
  code: string
  message: string
  stack?: string
}

export type RecordsAt = { archive: string; rows: number; refused: number } | { postgres: string; schema: string; rows: number; refused: number }

export interface RunSummary {
  /** The experiment id the records carry (`<name>/<runId>`). */
  exp: string
  runId: string
  ticks: number
  turns: number
  messages: DeliveryStats
  /** LLM calls made (cohort hits are calls shared, not made); with a replay, how it answered them. */
  llm: { calls: number; cohortHits: number; replay?: ReplayStats }
  /** Failed turns (all of them are in the `errors` table; the first 100 are listed). */
  errors: { count: number; first: TurnError[] }
  /** Agents that failed `maxConsecutiveFailures` turns in a row and take no more turns. */
  parked: string[]
  setupS: number
  wallS: number
  /** Ticks per second of wall time, and the slowest tick. */
  tickMs: { p50: number; max: number }
  records: RecordsAt
  /** Rows the sink refused, with reasons (the first 20). */
  refusals: string[]
  /** The run ended early through `stop()`. */
  stopped: boolean
  routing?: RoutingStats
  /** Agents with memories, texts remembered, and texts embedded for them (a repeated text once). */
  memory: { agents: number; texts: number; embedded: number }
  /** The tick a resumed run went on from. */
  resumedFrom?: number
  /** The last checkpoint this run wrote. */
  checkpoint?: string
}

export interface SummaryInput {
  exp: string
  runId: string
  ticks: TickInfo[]
  turns: number
  messages: DeliveryStats
  llm: { calls: number; cohortHits: number; replay?: ReplayStats }
  errors: TurnError[]
  errorCount: number
  parked: string[]
  setupS: number
  wallS: number
  records: RecordsAt
  refusals: string[]
  stopped: boolean
  routing?: RoutingStats
  memory: { agents: number; texts: number; embedded: number }
  resumedFrom?: number
  checkpoint?: string
}

export function summarize(s: SummaryInput): RunSummary {
  const times = s.ticks.map((t) => t.tickMs).sort((a, b) => a - b)
  return {
    exp: s.exp,
    runId: s.runId,
    ticks: s.ticks.length,
    turns: s.turns,
    messages: { ...s.messages },
    llm: s.llm,
    errors: { count: s.errorCount, first: s.errors },
    parked: s.parked,
    setupS: s.setupS,
    wallS: s.wallS,
    tickMs: { p50: times[Math.floor(times.length / 2)] ?? 0, max: times[times.length - 1] ?? 0 },
    records: s.records,
    refusals: s.refusals,
    stopped: s.stopped,
    memory: s.memory,
    ...(s.resumedFrom === undefined ? {} : { resumedFrom: s.resumedFrom }),
    ...(s.checkpoint === undefined ? {} : { checkpoint: s.checkpoint }),
    ...(s.routing ? { routing: { ...s.routing } } : {}),
  }
}
