// One configuration of the `simulation` suite in a fresh process (so each N starts from an empty
// heap): `node --expose-gc --import tsx benches/simulation/child.ts '<config JSON>'` prints one
// JSON line with the result.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { runFloor } from './floor.js'
import { runPlain } from './plain.js'
import { runRuntime } from './runtime.js'
import type { Config } from './workload.js'

const config = JSON.parse(process.argv[2] ?? '{}') as Omit<Config, 'dir'>
const dir = mkdtempSync(join(tmpdir(), `myriad-sim-${config.peer}-`))
try {
  const run = { runtime: runRuntime, floor: runFloor, plain: runPlain }[config.peer]
  const result = await run({ ...config, dir })
  process.stdout.write(`${JSON.stringify(result)}\n`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
