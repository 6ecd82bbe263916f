// `myriad db migrate` and `myriad db import <dir>`: the database chores of the recording sink.
import { parseArgs } from 'node:util'

import { MyriadError } from '../../errors/index.js'
import { importArchive, migrate } from '../../sink/index.js'
import type { Command } from '../command.js'

const DB_USAGE = `usage:
  myriad db migrate [--dsn URL] [--schema NAME]        create or upgrade the recording schema
  myriad db import <dir> [--dsn URL] [--schema NAME]   load an Avro archive with COPY (each row once)

--dsn defaults to $MYRIAD_DSN, then $DATABASE_URL; --schema to 'myriad'.

examples:
  MYRIAD_DSN=postgres://127.0.0.1/test myriad db migrate
  myriad db import runs/mutual-aid/20261207T120000Z-abc123 --dsn postgres://127.0.0.1/test`

export const db: Command = {
  name: 'db',
  summary: 'the recording database: migrate, import an archive',
  usage: DB_USAGE,
  run: dbCommand,
}

/** Runs `myriad db ...` (argv after `db`); resolves with the exit code. */
async function dbCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { dsn: { type: 'string' }, schema: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  })
  const [command, dir] = positionals
  if (values.help || !['migrate', 'import'].includes(command ?? '')) {
    console.log(DB_USAGE)
    return values.help ? 0 : 2
  }
  const dsn = values.dsn ?? process.env.MYRIAD_DSN ?? process.env.DATABASE_URL
  if (!dsn) throw new MyriadError('ERR_INVALID_ARG', 'no database: pass --dsn or set MYRIAD_DSN')
  if (command === 'migrate') {
    const applied = await migrate(dsn, { schema: values.schema })
    console.log(applied.length ? `applied migrations ${applied.join(', ')}` : 'schema is up to date')
  } else {
    if (!dir) throw new MyriadError('ERR_INVALID_ARG', 'import needs the archive directory')
    const { files, rows } = await importArchive(dir, { dsn, schema: values.schema })
    console.log(`imported ${rows.toLocaleString('en')} rows from ${files} files (rows already loaded were skipped)`)
  }
  return 0
}
