// Shared by the runtime tests: a fresh archive directory per run, and reading its records back.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { type RunSummary, type SinkTable, readArchive } from '../../src/index.js'

export const DSN = 'postgres://root@127.0.0.1:5432/test'

export function archiveDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `myriad-${tag}-`))
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}

export type Row = Record<string, unknown>

/** The rows a run wrote to its archive, for one table. */
export async function recorded(summary: RunSummary, table: SinkTable): Promise<Row[]> {
  if (!('archive' in summary.records)) throw new Error('the run did not write an archive')
  return (await readArchive(summary.records.archive, { table, exp: summary.exp })) as Row[]
}

/** Rows without what differs between two runs of one seed: the experiment id, and latencies. */
export function comparable(rows: Row[]): Row[] {
  return rows
    .map(({ exp_id: _exp, latency_ms: _latency, ...rest }) => rest)
    .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0))
}
