// The sink's options as a zod schema (types inferred, defaults from the Rust core).
import { z } from 'zod'

import { defaults } from '../native/index.js'

const u32 = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1)

export const SinkOptionsSchema = z
  .strictObject({
    dsn: z.string().min(1).optional().describe('`postgres://user:password@host:port/db`. Omitted: rows go to the Avro archive in `dir`.'),
    dir: z.string().min(1).optional().describe(`The archive's directory when there is no \`dsn\` (default \`${defaults.sink.dir}\`).`),
    schema: z.string().min(1).default(defaults.sink.schema).describe('Postgres schema of the tables; created and migrated on open.'),
    batchRows: u32.default(defaults.sink.batchRows).describe('Rows per COPY batch / Avro block.'),
    flushIntervalMs: u32.default(defaults.sink.flushIntervalMs).describe('A batch that is not full is written after this long anyway.'),
    maxPending: u32.default(defaults.sink.maxPending).describe('Rows accepted but not yet written before `write` waits.'),
    maxPendingBytes: u32
      .default(defaults.sink.maxPendingBytes)
      .describe(
        'Bytes of accepted rows not yet written before `write` waits (at least 1 MiB): the bound that holds when rows are large. A batch is also sealed at a quarter of it (16 MiB at most) before it reaches `batchRows`.',
      ),
    concurrency: u32.default(defaults.sink.concurrency).describe('Batches written at once, one connection each.'),
    connectTimeoutMs: u32.default(defaults.sink.connectTimeoutMs).describe('How long opening the database may take.'),
    closeTimeoutMs: u32
      .default(defaults.sink.closeTimeoutMs)
      .describe('How long `close` waits for unwritten rows (a database down, a disk full) before reporting them.'),
  })
  .describe('Sink.open(options)')

export type SinkOptions = z.input<typeof SinkOptionsSchema>

/** What `importArchive` takes: where to load into, and the batch settings of the writers. */
export const ImportOptionsSchema = SinkOptionsSchema.omit({ dir: true }).extend({ dsn: z.string().min(1).describe('Where to load the archive.') })
export type ImportOptions = z.input<typeof ImportOptionsSchema>
