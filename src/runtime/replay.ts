// Answering a run's LLM calls from an earlier run's `llm_calls` rows: a study re-run without
// paying for the model again, and a run that can be reproduced exactly. A call is found by
// (agent, tick, call index) — a cohort's call as `@cohort:<key>`, call 0 — and must carry the same request (its hash) as the recorded one. What is not found, or differs,
// is ERR_REPLAY_MISMATCH, or goes to the live provider with `onMiss: 'live'`.
import { existsSync, statSync } from 'node:fs'

import type { z } from 'zod'

import { type ErrorCode, MyriadError } from '../errors/index.js'
import { type ChatRequest, type ChatResult, type JsonRequest, LLMError, failureOfCode, parseStructured } from '../llm/index.js'
import { type OutputSchema, isZodSchema, prepareSchema } from '../llm/structured.js'
import { type ArchivedRow, readArchive, readPostgres } from '../sink/index.js'

export type ReplaySource = string | { from: string; exp?: string; schema?: string }

export interface ReplayStats {
  /** Calls answered from the recording. */
  answered: number
  /** Calls with no recorded match (each ERR_REPLAY_MISMATCH, or sent live). */
  missed: number
  /** Misses sent to the live provider (`onMiss: 'live'`). */
  live: number
}

interface RecordedResponse {
  text: string
  finishReason: string | null
  toolCalls: ChatResult['toolCalls']
  provider: string
  error?: string
}

type CallRow = ArchivedRow<'llm_calls'>

/** What a replayed call gives: the recorded result or failure, or why there is none. */
export type Replayed = { result: ChatResult } | { error: unknown } | { miss: string }

/** A postgres:// (or postgresql://) URL, not a directory. */
export function isDatabaseUrl(from: string): boolean {
  return /^postgres(ql)?:\/\//.test(from)
}

/** A JSON Schema's validator, converted once per schema object (a zod schema is its own). */
const validators = new WeakMap<object, z.ZodType>()
function validatorOf(schema: OutputSchema<unknown>): z.ZodType {
  if (isZodSchema(schema)) return schema
  let validator = validators.get(schema)
  if (!validator) {
    validator = prepareSchema(schema).validator
    validators.set(schema, validator)
  }
  return validator
}

const key = (agent: string, tick: number, index: number) => `${agent}\n${tick}\n${index}`

export class Replay {
  readonly stats: ReplayStats = { answered: 0, missed: 0, live: 0 }

  private constructor(
    private readonly calls: Map<string, CallRow>,
    /** The recorded run's exp id, for messages. */
    readonly exp: string,
  ) {}

  /** Reads the recorded calls of one run: a run directory (its archive) or a Postgres URL with the run's exp id. */
  static async load(source: ReplaySource): Promise<Replay> {
    const { from, exp, schema } = typeof source === 'string' ? { from: source, exp: undefined, schema: undefined } : source
    let rows: CallRow[]
    if (isDatabaseUrl(from)) {
      if (!exp) {
        throw new MyriadError(
          'ERR_INVALID_ARG',
          "replay from Postgres needs the run's id: llm: { replay: { from: url, exp: '<name>/<runId>' } } (the summary's exp)",
        )
      }
      rows = await readPostgres(from, { table: 'llm_calls', exp, schema })
    } else {
      if (!existsSync(from) || !statSync(from).isDirectory()) {
        throw new MyriadError('ERR_IO', `replay: ${from} is not a directory (give a run's directory, the summary's records.archive)`)
      }
      rows = await readArchive(from, { table: 'llm_calls', exp })
    }
    const exps = [...new Set(rows.map((r) => r.exp_id))]
    if (exps.length > 1) {
      throw new MyriadError(
        'ERR_INVALID_ARG',
        `replay: ${from} holds the LLM calls of ${exps.length} runs (${exps.slice(0, 3).join(', ')}…): name one with { from, exp }`,
      )
    }
    if (rows.length === 0) throw new MyriadError('ERR_INVALID_ARG', `replay: ${from} holds no recorded LLM calls${exp ? ` of ${exp}` : ''}`)
    const calls = new Map<string, CallRow>()
    for (const row of rows) calls.set(key(row.agent_id, row.tick, row.call_index), row)
    return new Replay(calls, exps[0])
  }

  /** The recorded answer to this call, or why there is none. */
  answer(agent: string, tick: number, index: number, kind: 'chat' | 'json', request: ChatRequest, hash: string): Replayed {
    const where = `agent ${agent}, tick ${tick}, call ${index}`
    const row = this.calls.get(key(agent, tick, index))
    if (!row) return this.missed(`${where}: ${this.exp} recorded no such call`)
    if (row.request_hash !== hash || (row.request as { kind?: string }).kind !== kind) {
      return this.missed(`${where}: the request differs from the one ${this.exp} recorded (hash ${hash}, recorded ${row.request_hash})`)
    }
    const response = row.response as RecordedResponse | null
    if (row.outcome !== 'ok') {
      this.stats.answered++
      const message = response?.error ?? `the recorded call failed with ${row.outcome}`
      const failure = failureOfCode(row.outcome)
      return { error: failure ? new LLMError(failure, message) : new MyriadError(row.outcome as ErrorCode, message) }
    }
    if (!response) return this.missed(`${where}: the recorded call has outcome ok but no response`)
    const result: ChatResult = {
      text: response.text,
      message: { role: 'assistant', content: response.text, ...(response.toolCalls.length > 0 ? { tool_calls: response.toolCalls } : {}) },
      toolCalls: response.toolCalls,
      finishReason: response.finishReason,
      usage: { promptTokens: row.prompt_tokens ?? 0, completionTokens: row.completion_tokens ?? 0 },
      provider: response.provider,
      model: row.model ?? '',
      attempts: 1,
      latencyMs: 0,
      trimmed: 0,
      degradation: 'normal',
    }
    if (kind === 'json') {
      const parsed = parseStructured(response.text, validatorOf((request as JsonRequest<unknown>).schema))
      if (!parsed.ok) return this.missed(`${where}: the recorded reply does not fit this call's schema: ${parsed.issues}`)
      this.stats.answered++
      return { result: { ...result, data: parsed.value, repaired: (row.response as { repaired?: boolean }).repaired === true } as ChatResult }
    }
    this.stats.answered++
    return { result }
  }

  private missed(why: string): Replayed {
    this.stats.missed++
    return { miss: why }
  }
}

/** The error of a miss under `onMiss: 'error'`. */
export function mismatch(why: string): MyriadError {
  return new MyriadError('ERR_REPLAY_MISMATCH', `replay: ${why}`)
}
