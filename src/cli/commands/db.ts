#!/usr/bin/env node
// `myriad db migrate` and `myriad db import <dir>`: the database chores of the recording sink.
import { parseArgs } from 'node:util'

import { MyriadError } from './errors.js'
import { importArchive, migrate } from './sink.js'

const USAGE = `usage:
  myriad db migrate [--dsn URL] [--schema NAME]        create or upgrade the recording schema
  myriad db import <dir> [--dsn URL] [--schema NAME]   load an Avro archive with COPY (each row once)

--dsn defaults to $MYRIAD_DSN, then $DATABASE_URL; --schema to 'myriad'.`

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { dsn: { type: 'string' }, schema: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  })
  const [group, command, dir] = positionals
  if (values.help || group !== 'db' || !['migrate', 'import'].includes(command ?? '')) {
    console.log(USAGE)
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    const code = e instanceof MyriadError ? e.code : 'ERR_INTERNAL'
    console.error(`myriad: ${code}: ${e instanceof Error ? e.message : String(e)}`)
    process.exit(1)
  },
)
