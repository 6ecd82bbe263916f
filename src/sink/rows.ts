// Turns a call's rows into the column form the native sink checks (crates/myriad-core/src/sink/
// columns.rs). JSON.stringify of the whole call was most of the JS thread's cost per row: its
// per-value work on the strings, the numbers and each row's array. Here a row of the usual shape
// puts its text and uuid values into one joined string (with their lengths), its times and numbers
// into a Float64Array, and only its jsonb values go to JSON.stringify, one call for all of them.
// The encoder is generated per table so that every property read is a plain `r.col` site V8 can
// cache. A row that does not fit (an unknown key, an ISO string time, a number where text belongs)
// goes whole as JSON, the keyed form, and gets Rust's full check: both forms are checked alike.
import { native } from '../native/index.js'

export interface EncodedRows {
  /** 1 for each row sent whole as JSON. */
  keyed: Uint8Array
  /** The text and uuid values, joined; `lengths` splits them ({@link NULL_PIECE}: null). */
  joined: string
  lengths: Uint32Array
  /** Times (epoch ms) and numbers; NaN stands for null, as in JSON. */
  numbers: Float64Array
  /** The jsonb values of the rows in column form, and the keyed rows, in row order. */
  json: string
}

/** The length that marks a null text value (the binding's constant, see crates/myriad-node/src/text.rs). */
const NULL_PIECE: number = native.NULL_PIECE

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

/** The enumerable keys of `r`, own and inherited. */
function countKeys(r: object): number {
  let n = 0
  for (const _ in r) n++
  return n
}

function compile(columns: { name: string; type: string }[]): Encoder {
  // Column names come from the Rust schema ([a-z_]+), never from user input.
  for (const c of columns) if (!/^[a-z_]+$/.test(c.name)) throw new Error(`unexpected sink column name ${c.name}`)
  const isText = (t: string) => t === 'text' || t === 'uuid'
  // Booleans cross with the numbers, as 1 and 0 (crates/myriad-core/src/sink/columns.rs).
  const isNumber = (t: string) => t === 'timestamptz' || t === 'float8' || t === 'int8' || t === 'bool'
  const texts = columns.filter((c) => isText(c.type)).length
  const numbers = columns.filter((c) => isNumber(c.type)).length
  const reads = columns.map((c, j) => `const v${j} = r.${c.name}`).join('\n    ')
  const present = columns.map((_, j) => `(v${j} !== undefined)`).join(' + ')
  const fits = columns.flatMap((c, j) => {
    if (isText(c.type)) return [`(typeof v${j} === 'string' || v${j} == null)`]
    if (c.type === 'timestamptz') return [`(v${j} instanceof Date || typeof v${j} === 'number' || v${j} == null)`]
    if (c.type === 'float8' || c.type === 'int8') return [`(typeof v${j} === 'number' || v${j} == null)`]
    if (c.type === 'bool') return [`(typeof v${j} === 'boolean' || v${j} == null)`]
    return []
  })
  const puts = columns.map((c, j) => {
    if (isText(c.type)) return `if (typeof v${j} === 'string') { joined += v${j}; lengths[t++] = v${j}.length } else lengths[t++] = ${NULL_PIECE}`
    if (c.type === 'timestamptz') return `numbers[m++] = v${j} instanceof Date ? v${j}.getTime() : typeof v${j} === 'number' ? v${j} : NaN`
    // An int8 value that is not an integer (or beyond 2^53 - 1) is refused in Rust, with a reason.
    if (c.type === 'float8' || c.type === 'int8') return `numbers[m++] = typeof v${j} === 'number' ? v${j} : NaN`
    if (c.type === 'bool') return `numbers[m++] = v${j} === true ? 1 : v${j} === false ? 0 : NaN`
    return `json.push(v${j})`
  })
  const body = `
  const n = rows.length
  const keyed = new Uint8Array(n)
  const lengths = new Uint32Array(n * ${texts})
  const numbers = new Float64Array(n * ${numbers})
  const json = []
  let joined = ''
  let t = 0
  let m = 0
  for (let i = 0; i < n; i++) {
    const r = rows[i]
    if (r === null || typeof r !== 'object' || Array.isArray(r)) {
      keyed[i] = 1
      json.push(r)
      continue
    }
    ${reads}
    // A key that is not a column, a column set to undefined, a toJSON of its own, or a value of
    // another type: the keyed form, which Rust treats exactly as it would any object row. Keys are
    // counted with for-in, which allocates nothing (Object.keys made an array per row, a visible
    // share of the JS thread's time); on a plain object it counts what Object.keys would, and any other
    // prototype goes keyed, as it would count inherited keys.
    if (Object.getPrototypeOf(r) !== Object.prototype || countKeys(r) !== ${present} || r.toJSON !== undefined || !(${fits.join(' && ') || 'true'})) {
      keyed[i] = 1
      json.push(r)
      continue
    }
    ${puts.join('\n    ')}
  }
  return { keyed, joined, lengths: lengths.subarray(0, t), numbers: numbers.subarray(0, m), json: JSON.stringify(json) }`
  return new Function('countKeys', 'rows', body).bind(null, countKeys) as Encoder
}
