// Checks of what callers pass in: each failure is a `MyriadError` naming what was wrong.
import type { z } from 'zod'

import type { ErrorCode } from './codes.js'
import { MyriadError } from './error.js'

export function invalidArg(message: string): MyriadError {
  return new MyriadError('ERR_INVALID_ARG', message)
}

export function assertStrings(value: unknown, what: string): asserts value is string[] {
  if (!Array.isArray(value)) throw invalidArg(`${what} must be an array of strings`)
  for (let i = 0; i < value.length; i++) {
    if (typeof value[i] !== 'string') throw invalidArg(`${what}[${i}] must be a string, got ${typeof value[i]}`)
  }
}

/** Accepts a Float32Array as is, and converts a plain number array. */
export function toFloat32(value: unknown, what: string): Float32Array {
  if (value instanceof Float32Array) return value
  if (Array.isArray(value) && value.every((v) => typeof v === 'number')) return Float32Array.from(value)
  throw invalidArg(`${what} must be a Float32Array or an array of numbers`)
}

/**
 * A component's options checked against its schema (defaults filled in). A failure names every
 * offending path: `Sink options: batchRows: expected an integer >= 1, got 0`.
 */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, what: string, code: ErrorCode = 'ERR_INVALID_ARG'): z.output<S> {
  const result = schema.safeParse(input === undefined ? {} : input)
  if (result.success) return result.data
  const issues = result.error.issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
  throw new MyriadError(code, `${what}: ${issues.join('; ')}`)
}
