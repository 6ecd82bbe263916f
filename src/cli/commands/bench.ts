// `myriad bench [suite...]`: the stress-test suites, as `npm run bench` runs them (it builds, puts
// the model in place, then runs benches/run.ts). The suites live in the repository, not in the
// installed package.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { MyriadError } from '../../errors/index.js'
import type { Command } from '../command.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

export const bench: Command = {
  name: 'bench',
  summary: 'run the stress-test suites (npm run bench), in a clone of the repository',
  usage: `usage: myriad bench [suite...] [--quick] [--extended] [--n 10,50] [--iterations K]

Runs the named suites (all without names) one after another, each as \`npm run bench -- --suite
NAME\`: results go to bench/results/latest.json and the tables to the terminal. Suites: matching,
scan, registry, policy, bus, sink, async, simulation.

examples:
  myriad bench --quick
  myriad bench matching registry --n 10,100,1000`,
  async run(argv) {
    if (!existsSync(join(ROOT, 'benches', 'run.ts'))) {
      throw new MyriadError(
        'ERR_INVALID_ARG',
        'the benchmarks are in the repository, not in the installed package: clone it, then npm install && npm run bench',
      )
    }
    const suites: string[] = []
    const flags: string[] = []
    for (let i = 0; i < argv.length; i++) {
      if (argv[i].startsWith('--')) {
        flags.push(argv[i])
        if (['--n', '--iterations'].includes(argv[i]) && argv[i + 1] !== undefined) flags.push(argv[++i])
      } else suites.push(argv[i])
    }
    for (const suite of suites.length ? suites : [undefined]) {
      const args = ['run', 'bench', '--', ...(suite ? ['--suite', suite] : []), ...flags]
      const r = spawnSync('npm', args, { cwd: ROOT, stdio: 'inherit' })
      if (r.error) throw new MyriadError('ERR_IO', `npm ${args.join(' ')}: ${r.error.message}`)
      if (r.status !== 0) return r.status ?? 1
    }
    return 0
  },
}
