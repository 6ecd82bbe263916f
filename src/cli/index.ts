#!/usr/bin/env node
// The `myriad` command: one module per command under commands/, dispatched here. Every command
// answers --help with its usage and examples; exit codes are in command.ts.
import { readFileSync } from 'node:fs'

import { MyriadError } from '../errors/index.js'
import { EXIT } from './command.js'
import { COMMANDS, USAGE } from './all-commands.js'

/** Refused before anything started: the user's input, not the run. */
const INPUT_ERRORS = new Set(['ERR_CONFIG', 'ERR_AGENTS_MODULE', 'ERR_LLM_UNREACHABLE', 'ERR_INVALID_ARG', 'ERR_AGENT_PROFILE', 'ERR_LLM_CONFIG'])

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === '--version' || name === '-v') {
    console.log(version())
    return EXIT.ok
  }
  const command = COMMANDS.find((c) => c.name === name)
  if (!command) {
    if (name !== undefined && name !== '--help' && name !== '-h') console.error(`myriad: unknown command '${name}'\n`)
    console.log(USAGE)
    return name === '--help' || name === '-h' ? EXIT.ok : EXIT.usage
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage)
    return EXIT.ok
  }
  return command.run(rest)
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    // node:util parseArgs refuses unknown or malformed flags with its own ERR_PARSE_ARGS_* codes.
    const badFlag = /^ERR_PARSE_ARGS_/.test(String((e as { code?: unknown })?.code))
    const code = e instanceof MyriadError ? e.code : badFlag ? 'ERR_INVALID_ARG' : 'ERR_INTERNAL'
    console.error(`myriad: ${code}: ${e instanceof Error ? e.message : String(e)}`)
    process.exit(INPUT_ERRORS.has(code) ? EXIT.usage : EXIT.failed)
  },
)
