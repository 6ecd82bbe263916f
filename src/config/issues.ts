// Turning zod's issues with an experiment file into messages a person can act on: the path, the
// line and column in the file, what was expected and what was there, and for an unknown key the
// known key it most likely meant.
import type { z } from 'zod'

export type Path = readonly (string | number)[]

/** Where a path is in the file (1-based), when it came from the file. */
export type Locate = (path: Path) => { line: number; col: number } | undefined

export const showPath = (path: Path): string => (path.length === 0 ? '(top level)' : path.map(String).join('.'))

interface Def {
  type: string
  innerType?: z.ZodType
  in?: z.ZodType
  shape?: Record<string, z.ZodType>
  options?: z.ZodType[]
  element?: z.ZodType
}
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def

/** The object keys a schema allows at `path` (through optionals, defaults, unions and arrays). */
export function keysAt(schema: z.ZodType, path: Path): string[] {
  const found = new Set<string>()
  const visit = (s: z.ZodType, rest: Path): void => {
    const def = defOf(s)
    if (def.innerType) return visit(def.innerType, rest)
    if (def.type === 'pipe' && def.in) return visit(def.in, rest)
    if (def.type === 'union' && def.options) {
      for (const o of def.options) visit(o, rest)
      return
    }
    if (def.type === 'array' && def.element && typeof rest[0] === 'number') return visit(def.element, rest.slice(1))
    if (def.type === 'object' && def.shape) {
      if (rest.length === 0) for (const k of Object.keys(def.shape)) found.add(k)
      else if (typeof rest[0] === 'string' && def.shape[rest[0]]) visit(def.shape[rest[0]], rest.slice(1))
    }
  }
  visit(schema, path)
  return [...found]
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1))
      diagonal = above
    }
  }
  return row[b.length]
}

export function didYouMean(key: string, known: string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const k of known) {
    const d = distance(key, k)
    if (d < bestDistance) {
      best = k
      bestDistance = d
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined
}

const typeName = (value: unknown): string => (value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value)

/** The value at `path` in plain data, or undefined. */
export function getIn(data: unknown, path: Path): unknown {
  let v = data
  for (const p of path) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[p] : undefined
  return v
}

/** One line per problem: `file:line:col: path: message`. */
export function describeIssues(
  issues: z.core.$ZodIssue[],
  schema: z.ZodType,
  data: unknown,
  file: string,
  locate: Locate,
  sourceOf: (path: Path) => string,
): string[] {
  const lines: string[] = []
  for (const issue of issues) {
    const at: Path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))
    const paths: { path: Path; message: string }[] = []
    if (issue.code === 'unrecognized_keys') {
      const known = keysAt(schema, at)
      for (const key of issue.keys) {
        const guess = didYouMean(key, known)
        paths.push({
          path: [...at, key],
          message: `unknown key '${key}'${guess ? `: did you mean '${guess}'?` : ''} (known here: ${known.join(', ')})`,
        })
      }
    } else if (issue.code === 'invalid_type') {
      const got = getIn(data, at)
      paths.push({ path: at, message: `expected ${issue.expected}, got ${got === undefined ? 'nothing' : `${typeName(got)} ${JSON.stringify(got)}`}` })
    } else {
      paths.push({ path: at, message: issue.message })
    }
    for (const { path, message } of paths) {
      const pos = locate(path)
      const where = pos ? `${file}:${pos.line}:${pos.col}` : sourceOf(path)
      lines.push(`${where}: ${showPath(path)}: ${message}`)
    }
  }
  return lines
}
