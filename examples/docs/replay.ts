import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Experiment, type ExperimentOptions, defineAgent, readArchive } from '@myriad-agents/core'
import { startLLMServer } from '@myriad-agents/core/testing'
import { z } from 'zod'

const Voter = defineAgent({
  name: 'voter',
  profile: z.object({ town: z.string() }),
  state: { leaning: 0 },
  async step(ctx) {
    const news = await ctx.llm.cohort(ctx.profile.town).chat({ messages: [{ role: 'user', content: `News in ${ctx.profile.town}, day ${ctx.tick}?` }] })
    const view = await ctx.llm.json({
      messages: [{ role: 'user', content: `You read: ${news.text}. Leaning from -1 to 1?` }],
      schema: z.object({ leaning: z.number().min(-1).max(1) }),
    })
    ctx.state.leaning = view.data.leaning
  },
})

const study = (llm: ExperimentOptions['llm'], dir: string) =>
  new Experiment({
    name: 'vote',
    seed: 3,
    population: [{ agent: Voter, count: 50, profiles: (i) => ({ town: ['north', 'south'][i % 2] }) }],
    clock: { start: Date.UTC(2026, 0, 1) },
    llm,
    sink: { archive: dir },
  })

// The first run pays for the model (here the test server, at 100 ms a call)...
const server = await startLLMServer({ latency: { fixedMs: 100 } })
const live = await study({ providers: [{ name: 'local', baseUrl: server.url, models: ['test'] }] }, mkdtempSync(join(tmpdir(), 'vote-'))).run({ ticks: 3 })
await server.close()
if (!('archive' in live.records)) throw new Error('records went elsewhere')

// ...the second answers every call from the first one's llm_calls: no provider, no waiting.
const again = await study({ replay: live.records.archive }, mkdtempSync(join(tmpdir(), 'vote-'))).run({ ticks: 3 })
assert.deepEqual(again.llm.replay, { answered: live.llm.calls, missed: 0, live: 0 })
assert.ok(again.wallS < live.wallS)

// Same seed, same answers: the same states, tick by tick.
const states = async (summary: typeof live) =>
  'archive' in summary.records
    ? (await readArchive(summary.records.archive, { table: 'states' })).map(({ agent_id, tick, state }) => ({ agent_id, tick, state }))
    : []
assert.deepEqual(await states(again), await states(live))
console.log(`live ${live.wallS.toFixed(2)} s, replayed ${again.wallS.toFixed(2)} s`)
