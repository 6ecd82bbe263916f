import { invalidArg } from './errors.js'

export function assertStrings(value: unknown, what: string): asserts value is string[] {
  if (!Array.isArray(value)) throw invalidArg(`${what} must be an array of strings`)
  for (let i = 0; i < value.length; i++) {
    if (typeof value[i] !== 'string') throw invalidArg(`${what}[${i}] must be a string, got ${typeof value[i]}`)
  }
}

export function assertPositiveInt(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw invalidArg(`${what} must be a positive integer, got ${String(value)}`)
  }
}

/** Accepts a Float32Array as is, and converts a plain number array. */
export function toFloat32(value: unknown, what: string): Float32Array {
  if (value instanceof Float32Array) return value
  if (Array.isArray(value) && value.every((v) => typeof v === 'number')) return Float32Array.from(value)
  throw invalidArg(`${what} must be a Float32Array or an array of numbers`)
}
