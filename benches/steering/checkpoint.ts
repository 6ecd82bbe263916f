// One checkpoint-and-resume measurement in its own process (suite `steering`): N agents with
// specialties (10,000 distinct, so the registry holds all N and the index 10,000 rows) and a
// small state each run 2 ticks; a checkpoint is written after tick 1, then resumed in the same
// process and run one more tick. Prints one JSON line.
//   node --expose-gc --import tsx benches/steering/checkpoint.ts <agents> <dir>
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

import { z } from 'zod'

import { Experiment, type ExperimentOptions, defineAgent } from '../../src/index.js'

const agents = Number(process.argv[2])
const dir = process.argv[3]
const Citizen = defineAgent({
  name: 'citizen',
  profile: z.object({ field: z.number().int() }),
  state: { steps: 0, mood: 0.5, last: '' },
  specialty: (p) => `specialist in field ${p.field} of public services`,
  step(ctx) {
    ctx.state.steps++
    ctx.state.mood = Math.round(ctx.rand() * 1000) / 1000
    ctx.state.last = `t${ctx.tick}`
  },
})
const options: ExperimentOptions = {
  name: 'checkpoint-bench',
  seed: 1,
  population: [{ agent: Citizen, count: agents, profiles: (i) => ({ field: i % 10_000 }) }],
  clock: { start: Date.UTC(2026, 0, 1) },
  sink: { archive: join(dir, 'records') },
}

function bytesUnder(path: string): number {
  return readdirSync(path, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .reduce((n, e) => n + statSync(join(e.parentPath, e.name)).size, 0)
}

const path = join(dir, 'checkpoint')
const exp = new Experiment(options)
let checkpointS = 0
exp.on('tick', (t) => {
  if (t.tick !== 1) return
  const started = performance.now()
  void exp.checkpoint(path).then(() => {
    checkpointS = (performance.now() - started) / 1000
  })
})
const first = await exp.run({ ticks: 2 })
const resumeStarted = performance.now()
const resumed = await Experiment.resume(path, options)
let resumeS = 0
resumed.on('tick', (t) => {
  resumeS = (performance.now() - resumeStarted - t.tickMs) / 1000
})
const second = await resumed.run({ ticks: 3 })
const bytes = bytesUnder(path)
const parts = Object.fromEntries(readdirSync(path).map((f) => [f, statSync(join(path, f)).size]))
console.log(
  JSON.stringify({
    agents,
    setup_s: first.setupS,
    checkpoint_s: checkpointS,
    resume_s: resumeS,
    bytes,
    parts,
    turns: second.turns,
    resumed_from: second.resumedFrom,
    rss_mb: process.memoryUsage().rss / 2 ** 20,
  }),
)
