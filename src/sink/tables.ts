// The tables the sink records into and their row types (docs/concepts/sink.md documents them;
// the columns themselves come from the Rust schema, crates/myriad-core/src/sink/schema.rs).

/** The tables the sink records into (docs/concepts/sink.md documents their columns). */
export const SINK_TABLES = ['agents', 'states', 'messages', 'surveys', 'errors', 'metrics', 'llm_calls', 'events'] as const
export type SinkTable = (typeof SINK_TABLES)[number]

/** A time: a `Date`, an ISO 8601 string with offset, or epoch milliseconds. */
export type Timestamp = Date | string | number
type Json = unknown

/**
 * The tick a row belongs to (-1 for what is recorded before tick 0): an integer of at most
 * 2^53 - 1 in magnitude. Absent or null: no tick, as in rows written before the column existed.
 */
type Tick = { tick?: number | null }

/** The columns of each table; `?` marks nullable columns. */
export interface SinkRows {
  agents: { exp_id: string; agent_id: string; ts: Timestamp; profile: Json } & Tick
  states: { exp_id: string; agent_id: string; ts: Timestamp; state: Json } & Tick
  messages: { exp_id: string; msg_id?: string | null; src: string; dst?: string | null; kind?: string | null; ts: Timestamp; payload: Json } & Tick
  /**
   * One row per answered question: `form_id` is the survey's name, `answers` the answer (null
   * when `valid` is false), `raw` what the agent or model gave before it was checked.
   */
  surveys: {
    exp_id: string
    agent_id: string
    ts: Timestamp
    form_id: string
    answers?: Json | null
    question?: string | null
    raw?: string | null
    latency_ms?: number | null
    valid?: boolean | null
  } & Tick
  errors: { exp_id: string; ts: Timestamp; agent_id?: string | null; comp: string; detail: string } & Tick
  metrics: { exp_id: string; ts: Timestamp; agent_id?: string | null; name: string; value: number; labels?: Json | null } & Tick
  /** One row per LLM call of an agent; replay finds a call by `(agent_id, tick, call_index)`. */
  llm_calls: {
    exp_id: string
    agent_id: string
    tick: number
    call_index: number
    ts: Timestamp
    model?: string | null
    request_hash: string
    request: Json
    response?: Json | null
    prompt_tokens?: number | null
    completion_tokens?: number | null
    latency_ms: number
    outcome: string
  }
  /** What an experimenter did to a running population: an intervention, a survey sent, a resume. */
  events: { exp_id: string; ts: Timestamp; tick: number; kind: string; what: Json; who?: Json | null }
}

/**
 * A row as `readArchive` gives it back: every column present, `null` where there is no value,
 * times as epoch milliseconds, jsonb values parsed.
 */
export type ArchivedRow<T extends SinkTable> = {
  [K in keyof SinkRows[T]]-?: K extends 'ts' ? number : Exclude<SinkRows[T][K], undefined>
}
