// Reading records back, from the Avro archive or from Postgres, as the same rows: for tests, for
// replaying a run's LLM calls (llm_calls), and for reports.
import { invalidArg } from '../errors/index.js'
import { callNative, native } from '../native/index.js'
import { type ArchivedRow, SINK_TABLES, type SinkTable } from './tables.js'

function checkTable(table: unknown): asserts table is SinkTable {
  if (!SINK_TABLES.includes(table as SinkTable)) throw invalidArg(`unknown table '${table}'; tables: ${SINK_TABLES.join(', ')}`)
}

/**
 * The rows of `table` in the archive under `dir` (only experiment `exp`'s when given): each
 * experiment's in the order they were written, the experiments' files in path order.
 * Every column is a key; text and uuid values are strings, times epoch milliseconds, jsonb
 * values parsed, numbers numbers, no value `null`. A torn block at the end of a file (rows an
 * interrupted run never flushed) is left out; a damaged file, or one of an earlier schema,
 * rejects with `ERR_CORRUPT_ARCHIVE`; a missing `dir` with `ERR_IO`.
 */
export async function readArchive<T extends SinkTable>(dir: string, options: { table: T; exp?: string }): Promise<ArchivedRow<T>[]> {
  // Checked here too: plain JavaScript may pass anything.
  const table = options?.table
  const exp = options?.exp
  checkTable(table)
  if (typeof dir !== 'string' || (exp !== undefined && typeof exp !== 'string')) throw invalidArg('dir and exp must be strings')
  return JSON.parse(await callNative(() => native.readArchive(dir, table, exp)))
}

/**
 * The rows of experiment `exp` in `table` on the Postgres database at `dsn` (schema `myriad`
 * unless given), ordered by tick and time, in the shape `readArchive` gives. A database the sink
 * never wrote to gives `[]`; one that cannot be reached rejects with `ERR_SINK_CONNECT`, a
 * refused query with `ERR_SINK_READ`.
 */
export async function readPostgres<T extends SinkTable>(dsn: string, options: { table: T; exp: string; schema?: string }): Promise<ArchivedRow<T>[]> {
  const table = options?.table
  checkTable(table)
  const { exp, schema } = options
  if (typeof dsn !== 'string' || typeof exp !== 'string' || (schema !== undefined && typeof schema !== 'string')) {
    throw invalidArg('dsn, exp and schema must be strings')
  }
  return JSON.parse(await callNative(() => native.readPostgres(dsn, schema, table, exp)))
}
