// Turns a call's rows into the one JSON string the native sink checks (see crates/myriad-core/src/
// sink/rows.rs). JSON.stringify of row objects holding a `Date` spends most of its time in
// `Date.prototype.toJSON`; an array of arrays in column order, with `Date`s as epoch milliseconds,
// stringifies about 2.5x faster. The encoder is generated per table so that every property read is a
// plain `r.col` site V8 can cache, and rows that do not fit the fast form (an unknown column, say)
// go as objects and get Rust's full check.
import { native } from './native.js'

export interface EncodedRows {
  json: string
  /** Indexes of rows that were arrays: sent as `null` (rejected natively), reported with this reason. */
  arrays: number[]
}

export const ARRAY_ROW_REASON = 'a row must be an object keyed by column name, got an array'

type Encoder = (rows: readonly unknown[]) => EncodedRows

const encoders = new Map<string, Encoder>()

/** The encoder for `table` (a name already checked against the schema). */
export function rowEncoder(table: string): Encoder {
  let encoder = encoders.get(table)
  if (!encoder) {
    encoder = compile(native.sinkColumns(table))
    encoders.set(table, encoder)
  }
  return encoder
}

function compile(columns: { name: string; type: string }[]): Encoder {
  // Column names come from the Rust schema ([a-z_]+), never from user input.
  for (const c of columns) if (!/^[a-z_]+$/.test(c.name)) throw new Error(`unexpected sink column name ${c.name}`)
  const reads = columns.map((c, j) => `const v${j} = r.${c.name}`).join('\n    ')
  const present = columns.map((_, j) => `(v${j} !== undefined)`).join(' + ')
  const values = columns.map((c, j) => (c.type === 'timestamptz' ? `(v${j} instanceof Date ? v${j}.getTime() : v${j})` : `v${j}`)).join(', ')
  const body = `
  const out = new Array(rows.length)
  const arrays = []
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]
    if (r === null || typeof r !== 'object') { out[i] = r; continue }
    if (Array.isArray(r)) { out[i] = null; arrays.push(i); continue }
    ${reads}
    // A key that is not a column, a column set to undefined, or a toJSON of its own: the keyed
    // form, which JSON.stringify and Rust treat exactly as they would any object row.
    if (Object.keys(r).length !== ${present} || r.toJSON !== undefined) { out[i] = r; continue }
    out[i] = [${values}]
  }
  return { json: JSON.stringify(out), arrays }`
  return new Function('rows', body) as Encoder
}
