#!/usr/bin/env node
// The `myriad` command: one module per command under commands/, dispatched here.
import { readFileSync } from 'node:fs'

import { MyriadError } from '../errors/index.js'
import { DB_USAGE, db } from './commands/db.js'

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = { db }

const USAGE = `usage: myriad <command> [options]

commands:
  db migrate | db import <dir>    the recording database (myriad db --help)

myriad --version                  the package version

${DB_USAGE}`

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === '--version' || name === '-v') {
    console.log(version())
    return 0
  }
  const command = name === undefined ? undefined : COMMANDS[name]
  if (!command) {
    console.log(USAGE)
    return name === '--help' || name === '-h' ? 0 : 2
  }
  return command(rest)
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    const code = e instanceof MyriadError ? e.code : 'ERR_INTERNAL'
    console.error(`myriad: ${code}: ${e instanceof Error ? e.message : String(e)}`)
    process.exit(1)
  },
)
