// Reading the Avro archive back: for tests, and for replaying a run from its archive (llm_calls).
import { invalidArg } from '../errors/index.js'
import { callNative, native } from '../native/index.js'
import { type ArchivedRow, SINK_TABLES, type SinkTable } from './tables.js'

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
  if (!SINK_TABLES.includes(table)) throw invalidArg(`unknown table '${table}'; tables: ${SINK_TABLES.join(', ')}`)
  if (typeof dir !== 'string' || (exp !== undefined && typeof exp !== 'string')) throw invalidArg('dir and exp must be strings')
  return JSON.parse(await callNative(() => native.readArchive(dir, table, exp)))
}
