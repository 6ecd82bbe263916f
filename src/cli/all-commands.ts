// Every `myriad` command, in the order --help lists them, and the top-level usage.
import type { Command } from './command.js'
import { bench } from './commands/bench.js'
import { config } from './commands/config.js'
import { db } from './commands/db.js'
import { init } from './commands/init.js'
import { llmServer } from './commands/llm-server.js'
import { run } from './commands/run.js'

export const COMMANDS: Command[] = [init, run, config, llmServer, bench, db]

export const USAGE = `usage: myriad <command> [options]

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`).join('\n')}

  myriad <command> --help   its options and examples
  myriad --version          the package version

examples:
  myriad init && myriad run
  myriad run experiment.yaml --ticks 20 --json
  myriad llm-server --latency-ms 100`
