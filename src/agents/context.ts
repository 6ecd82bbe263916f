// What one agent's turn sees: `ctx`. The runtime makes one per turn over its columns (cheap to
// create, never kept after the turn); these are its types.
import type { z } from 'zod'

import type { ChatRequest, ChatResult, JsonRequest, JsonResult } from '../llm/index.js'
import type { BuiltinKind, Message, MessageSchemas } from './messages.js'

/** Options of `ctx.send`: the kind (default `agent-chat`). */
export interface SendOptions<K extends string = string> {
  kind?: K
}

/** One message of `ctx.sendMany`. */
export type Outgoing<M extends MessageSchemas> =
  | { [K in keyof M & string]: { to: string; kind: K; body: z.input<M[K]> } }[keyof M & string]
  | { to: string; kind?: BuiltinKind; body: unknown }

/** A helper `findHelpers` found: the policy's pick first, then the other candidates by similarity. */
export interface Helper {
  id: string
  /** Cosine similarity of its specialty to the query. */
  score: number
  /** The registry's trust, 0..1. */
  trust: number
  load: number
  capacity: number
  status: 'idle' | 'busy' | 'offline'
  specialty: string
}

export interface FindHelpersOptions {
  /** Candidates taken from the semantic index (default 5, at most 5 reach the policy). */
  k?: number
  /** Leave out agents at or over their capacity (default true). */
  available?: boolean
  /** Leave out agents whose trust is below this (default 0). */
  minTrust?: number
}

/** What an agent tells the registry and the policy about a helper it asked. */
export interface Outcome {
  success: boolean
  latencyMs?: number
}

/** A remembered text and how close it is to the query. */
export interface Recollection {
  text: string
  score: number
  /** The tick it was added in. */
  tick: number
}

/** The agent's memory: texts embedded with the experiment's embedder, searched by meaning. */
export interface AgentMemory {
  add(text: string): Promise<void>
  recall(query: string, k?: number): Promise<Recollection[]>
  readonly size: number
}

/** The experiment's LLM client as one agent's turn uses it: every call tagged with agent, tick and call index. */
export interface AgentLLM {
  chat(request: ChatRequest): Promise<ChatResult>
  json<T>(request: JsonRequest<T>): Promise<JsonResult<T>>
  /**
   * Agents that share `key` share one call per tick: the first asks, the rest get its answer. The
   * call is the cohort's (`@cohort:<key>` in `llm_calls`), charged to no agent's budget.
   */
  cohort(key: string): Pick<AgentLLM, 'chat' | 'json'>
}

export interface AgentContext<P = unknown, S = unknown, M extends MessageSchemas = MessageSchemas> {
  readonly id: string
  readonly profile: Readonly<P>
  /** Mutable; the runtime records the state of every agent whose state changed in a tick. */
  state: S
  readonly tick: number
  /** Simulated time: the experiment's start plus `tick * tickMs`, in ms since the epoch. */
  readonly now: number
  /** The agent's own seeded random stream in [0, 1): the same seed gives the same run. */
  rand(): number
  /** Messages delivered since the last turn, in delivery order per sender. */
  readonly inbox: readonly Message[]
  /** Aborted when the turn runs past `stepTimeoutMs` or the experiment stops. */
  readonly signal: AbortSignal
  /** The experiment's parameters (`params` option; an intervention's `world.setParam` changes them between ticks). */
  readonly params: Readonly<Record<string, unknown>>
  /**
   * Sends a message, delivered at the start of the next tick. Resolves at once unless the bus is
   * pushing back. A body that fails its kind's schema throws `ERR_MESSAGE_SCHEMA`; a recipient that
   * does not exist is a failed delivery (`ERR_UNKNOWN_AGENT`), recorded and counted, not lost.
   */
  send<K extends keyof M & string>(to: string, body: z.input<M[K]>, options: { kind: K }): Promise<void>
  send(to: string, body: unknown, options?: SendOptions<BuiltinKind>): Promise<void>
  sendMany(messages: readonly Outgoing<M>[]): Promise<void>
  readonly llm: AgentLLM
  readonly memory: AgentMemory
  /** Embeds the query, takes the top k specialties, filters by registry status, load and trust, and lets the policy pick. */
  findHelpers(query: string, options?: FindHelpersOptions): Promise<Helper[]>
  /** Records the outcome in the registry's trust ledger and gives the policy its reward. */
  feedback(helper: string, outcome: Outcome): void
  /** A metric of the agent's own, recorded with the tick. */
  record(name: string, value: number, labels?: Record<string, string>): void
  log(...args: unknown[]): void
}
