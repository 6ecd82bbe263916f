// `myriad config schema | show | check`: the experiment file's JSON Schema, the merged
// configuration with where each value came from (secrets redacted), and a full check.
import { parseArgs } from 'node:util'

import { configJsonSchema, experimentOptions, loadConfig } from '../../config/index.js'
import type { Command } from '../command.js'
import { OVERRIDE_FLAGS, OVERRIDE_USAGE, overridesOf } from '../overrides.js'

export const config: Command = {
  name: 'config',
  summary: 'the experiment file: its JSON Schema, the merged values, a check',
  usage: `usage:
  myriad config schema                     print the experiment file's JSON Schema
  myriad config show [file] [overrides]    the merged configuration, each value with its source
  myriad config check [file] [overrides]   check the file and load its agents module, start nothing

file defaults to experiment.yaml. Precedence: defaults < file < MYRIAD_* environment < flags.
${OVERRIDE_USAGE}

examples:
  myriad config schema > experiment.schema.json
  MYRIAD_TICKS=20 myriad config show --set concurrency.steps=64`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OVERRIDE_FLAGS })
    const [what, file = 'experiment.yaml'] = positionals
    if (what === 'schema') {
      console.log(JSON.stringify(configJsonSchema(), null, 2))
      return 0
    }
    if (what !== 'show' && what !== 'check') {
      console.log(this.usage)
      return 2
    }
    const loaded = loadConfig(file, { overrides: overridesOf(values) })
    if (what === 'show') {
      process.stdout.write(loaded.show())
      return 0
    }
    const { options, ticks } = await experimentOptions(loaded)
    const agents = options.population.reduce((n, e) => n + e.count, 0)
    console.log(`${file}: ok (${agents.toLocaleString('en')} agents of ${options.population.length} entries, ${ticks} ticks)`)
    return 0
  },
}
