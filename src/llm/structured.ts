// Structured output: find the JSON in a model's reply (fences, prose around it), validate it.
import { z } from 'zod'

import type { ResponseFormat } from './types.js'

/** A zod schema, or a JSON Schema object (converted with zod's fromJSONSchema). */
export type OutputSchema<T> = z.ZodType<T> | Record<string, unknown>

export interface PreparedSchema<T> {
  validator: z.ZodType<T>
  jsonSchema: Record<string, unknown>
}

export function isZodSchema(schema: unknown): schema is z.ZodType {
  return schema instanceof z.ZodType
}

export function prepareSchema<T>(schema: OutputSchema<T>): PreparedSchema<T> {
  if (isZodSchema(schema)) return { validator: schema as z.ZodType<T>, jsonSchema: z.toJSONSchema(schema) as Record<string, unknown> }
  return { validator: z.fromJSONSchema(schema) as z.ZodType<T>, jsonSchema: schema }
}

/** `response_format` for a mode: the schema itself, JSON mode, or none (prompt-only providers). */
export function responseFormatFor(mode: 'json_schema' | 'json_object' | 'none', name: string, jsonSchema: Record<string, unknown>): ResponseFormat | undefined {
  if (mode === 'json_schema') return { type: 'json_schema', json_schema: { name, schema: jsonSchema } }
  if (mode === 'json_object') return { type: 'json_object' }
  return undefined
}

const FENCE = /```[ \t]*(?:json[c5]?|JSON)?[ \t]*\r?\n([\s\S]*?)\r?\n?```/

/**
 * The JSON text in a reply: the whole reply if it parses, else the first fenced block, else the
 * first balanced `{...}` or `[...]` (strings and escapes respected), else undefined.
 */
export function extractJson(reply: string): unknown {
  const whole = tryParse(reply.trim())
  if (whole.ok) return whole.value
  const fenced = FENCE.exec(reply)
  if (fenced) {
    const inner = tryParse(fenced[1].trim())
    if (inner.ok) return inner.value
  }
  for (let start = firstOpening(reply, 0); start >= 0; start = firstOpening(reply, start + 1)) {
    const end = balancedEnd(reply, start)
    if (end < 0) continue
    const candidate = tryParse(reply.slice(start, end + 1))
    if (candidate.ok) return candidate.value
  }
  return NOT_FOUND
}

export const NOT_FOUND = Symbol('no JSON in the reply')

export type ParseOutcome<T> = { ok: true; value: T } | { ok: false; issues: string }

export function parseStructured<T>(reply: string, validator: z.ZodType<T>): ParseOutcome<T> {
  const json = extractJson(reply)
  if (json === NOT_FOUND) return { ok: false, issues: 'the reply holds no parseable JSON value' }
  const result = validator.safeParse(json)
  if (result.success) return { ok: true, value: result.data }
  return { ok: false, issues: z.prettifyError(result.error) }
}

function tryParse(text: string): { ok: true; value: unknown } | { ok: false } {
  const first = text.charCodeAt(0)
  // Only objects and arrays: a reply "42" or "true" of prose is not the structured answer.
  if (first !== 123 && first !== 91) return { ok: false }
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

function firstOpening(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 123 || c === 91) return i
  }
  return -1
}

/** Index of the bracket closing the one at `start`, or -1. */
function balancedEnd(text: string, start: number): number {
  const stack: number[] = []
  let inString = false
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92)
        i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
      continue
    }
    if (c === 34) inString = true
    else if (c === 123) stack.push(125)
    else if (c === 91) stack.push(93)
    else if (c === 125 || c === 93) {
      if (stack.pop() !== c) return -1
      if (stack.length === 0) return i
    }
  }
  return -1
}

/** The follow-up message of the repair round: what was wrong, and what to send instead. */
export function repairPrompt(issues: string, jsonSchema: Record<string, unknown>): string {
  return (
    `Your previous reply could not be used: ${issues}\n` +
    `Reply again with only a JSON value (no Markdown, no explanation) that matches this JSON Schema:\n` +
    JSON.stringify(jsonSchema)
  )
}
