// `myriad init [dir]`: a runnable experiment to start from (experiment.yaml, agents.ts and the
// file's JSON Schema for editors), copied from templates/init/ in the package.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { configJsonSchema } from '../../config/index.js'
import { MyriadError } from '../../errors/index.js'
import type { Command } from '../command.js'

const TEMPLATES = fileURLToPath(new URL('../../../templates/init/', import.meta.url))
const FILES = ['experiment.yaml', 'agents.ts']
const SCHEMA = 'experiment.schema.json'

export const init: Command = {
  name: 'init',
  summary: 'write a runnable experiment.yaml and agents.ts',
  usage: `usage: myriad init [dir] [--force]

Writes experiment.yaml (100 citizens for 5 ticks on the built-in test LLM), agents.ts (a small
mutual-aid agent), experiment.schema.json (for editor completion) and, where there is none, a
package.json that makes .ts files ES modules, into dir (default: .). Existing files are left alone
unless --force.

examples:
  myriad init && myriad run
  myriad init my-experiment && cd my-experiment && myriad run`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { force: { type: 'boolean' } } })
    const dir = resolve(positionals[0] ?? '.')
    const taken = [...FILES, SCHEMA].filter((f) => existsSync(join(dir, f)))
    if (taken.length > 0 && !values.force) {
      throw new MyriadError(
        'ERR_CONFIG',
        `${taken.map((f) => join(relative('.', dir) || '.', f)).join(', ')} already exist: nothing written (--force replaces them)`,
      )
    }
    mkdirSync(dir, { recursive: true })
    for (const f of FILES) copyFileSync(join(TEMPLATES, f), join(dir, f))
    writeFileSync(join(dir, SCHEMA), `${JSON.stringify(configJsonSchema(), null, 2)}\n`)
    const written = [...FILES, SCHEMA]
    // agents.ts is an ES module; without a package.json saying so, Node would take it for CommonJS.
    if (!existsSync(join(dir, 'package.json'))) {
      writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ private: true, type: 'module' }, null, 2)}\n`)
      written.push('package.json')
    }
    const shown = relative('.', dir) || '.'
    console.log(`wrote ${written.map((f) => join(shown, f)).join(', ')}`)
    console.log(shown === '.' ? 'next: myriad run' : `next: cd ${shown} && myriad run`)
    return 0
  },
}
