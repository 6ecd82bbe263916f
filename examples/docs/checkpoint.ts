import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Experiment, type ExperimentOptions, defineAgent } from '@myriad-agents/core'
import { z } from 'zod'

const Walker = defineAgent({
  name: 'walker',
  profile: z.object({}),
  state: { position: 0 },
  step(ctx) {
    ctx.state.position += ctx.rand() < 0.5 ? -1 : 1
    for (const m of ctx.inbox) ctx.state.position += m.body as number
    ctx.send(`walker-${Math.floor(ctx.rand() * 100)}`, ctx.state.position % 3)
  },
})

const options = (dir: string): ExperimentOptions => ({
  name: 'walk',
  seed: 9,
  population: [{ agent: Walker, count: 100, profiles: () => ({}) }],
  clock: { start: Date.UTC(2026, 0, 1) },
  sink: { archive: join(dir, 'records') },
  // After every 2nd tick: dir/checkpoints/tick-2, tick-4, ... (the newest 2 are kept).
  checkpoint: { every: 2, dir: join(dir, 'checkpoints') },
})

// A run that stops after tick 3 (a crash, a deadline, Ctrl-C)...
const dir = mkdtempSync(join(tmpdir(), 'walk-'))
const first = new Experiment(options(dir))
first.on('tick', (t) => t.tick === 3 && first.stop())
await first.run({ ticks: 6 })

// ...goes on from its newest checkpoint (taken after tick 3), with the same options.
const resumed = await Experiment.resume(join(dir, 'checkpoints'), options(dir))
const summary = await resumed.run({ ticks: 6 })
assert.equal(summary.resumedFrom, 4)
assert.equal(summary.exp, first.expId) // the same records, continued
assert.equal(summary.turns, 600) // the whole run's: 100 agents x 6 ticks

// The same end as a run that was never stopped.
const whole = new Experiment(options(mkdtempSync(join(tmpdir(), 'walk-'))))
await whole.run({ ticks: 6 })
assert.deepEqual(resumed.states(), whole.states())
