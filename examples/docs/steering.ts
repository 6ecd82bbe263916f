import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Experiment, defineAgent, defineSurvey, readArchive } from '@myriad-agents/core'
import { startLLMServer } from '@myriad-agents/core/testing'
import { z } from 'zod'

// The test server answers a JSON-schema request with a value that fits the schema.
const llm = await startLLMServer()

const Citizen = defineAgent({
  name: 'citizen',
  profile: z.object({ job: z.string(), age: z.number().int() }),
  state: { trust: 0.5 },
  step(ctx) {
    ctx.state.trust = Math.min(1, ctx.state.trust + (ctx.params.trustGain as number))
  },
  on: {
    // Nurses answer from their state; everyone else lets the LLM answer as them (return nothing).
    'user-survey'(ctx) {
      if (ctx.profile.job === 'nurse') return { trust: Math.round(1 + 4 * ctx.state.trust), vote: 'yes' }
    },
    'user-chat'(ctx, message) {
      return `As a ${ctx.profile.job}: ${message.body.text.length > 20 ? 'that is a long question' : 'fine, thanks'}`
    },
  },
})

const poll = defineSurvey({
  name: 'poll',
  questions: [
    { id: 'trust', kind: 'likert', text: 'I trust my neighbours', points: 5, labels: ['not at all', 'fully'] },
    { id: 'vote', kind: 'single', text: 'Will you vote?', options: ['yes', 'no', 'unsure'] },
  ],
})

const exp = new Experiment({
  name: 'town',
  seed: 1,
  population: [{ agent: Citizen, count: 300, profiles: (i) => ({ job: ['baker', 'nurse', 'teacher'][i % 3], age: 20 + (i % 60) }) }],
  params: { trustGain: 0.01 },
  llm: { providers: [{ name: 'local', baseUrl: llm.url, models: ['test'] }] },
  sink: { archive: mkdtempSync(join(tmpdir(), 'town-')) },
})

// Tick 2: a news event raises everyone's trust gain and removes one agent. Each change is an `events` row.
exp.at(2, (world) => {
  world.setParam('trustGain', 0.05)
  world.remove('citizen-0')
})
// Tick 3: a survey of half of the agents under 50, answered in their turn.
const scheduled = exp.survey(poll, { where: (a) => (a.profile as { age: number }).age < 50, sample: 0.5, atTick: 3 })
// An interview, answered at the start of the next tick.
const reply = exp.interview('citizen-1', 'How are you?')

const summary = await exp.run({ ticks: 5 })
const results = await scheduled.done
await llm.close()

assert.equal(await reply, 'As a nurse: fine, thanks')
assert.deepEqual(summary.parked, ['citizen-0'])
assert.equal(results.asked, 75) // half of the 149 agents under 50 still taking turns (citizen-0 was removed)
assert.equal(results.responseRate, 1)
assert.equal(results.invalidRate, 0)
console.log(results.questions.map((q) => [q.id, q.counts, q.mean]))
if (!('archive' in summary.records)) throw new Error('records went elsewhere')
const rows = await readArchive(summary.records.archive, { table: 'surveys', exp: summary.exp })
assert.equal(rows.length, 75 * 2) // one row per agent and question
const events = await readArchive(summary.records.archive, { table: 'events', exp: summary.exp })
assert.deepEqual(
  events.map((e) => `${e.tick} ${e.kind}`),
  ['2 set-param', '2 remove', '3 survey'],
)
