import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Experiment, defineAgent, readArchive } from '@myriad-agents/core'
import { startLLMServer } from '@myriad-agents/core/testing'
import { z } from 'zod'

const llm = await startLLMServer({ latency: { fixedMs: 20 } })

const Citizen = defineAgent({
  name: 'citizen',
  profile: z.object({ job: z.string() }),
  state: { mood: 0.5, replies: 0 },
  every: 2, // step on even ticks only: agents with nothing to do cost no turn
  async step(ctx) {
    // Agents with the same job share one LLM call per tick.
    const reply = await ctx.llm.cohort(ctx.profile.job).chat({ messages: [{ role: 'user', content: `A day as a ${ctx.profile.job}?` }] })
    ctx.state.replies++
    ctx.state.mood = Math.min(1, ctx.state.mood + 0.1 * ctx.rand())
    ctx.record('reply_chars', reply.text.length)
  },
})

const exp = new Experiment({
  name: 'citizens',
  seed: 42,
  population: [{ agent: Citizen, count: 100, profiles: (i) => ({ job: ['baker', 'nurse', 'teacher'][i % 3] }) }],
  llm: { providers: [{ name: 'local', baseUrl: llm.url, models: ['test'] }] },
  sink: { archive: mkdtempSync(join(tmpdir(), 'citizens-')) },
  clock: { mode: 'lockstep', tickMs: 60_000 },
})
const summary = await exp.run({ ticks: 4 })
await llm.close()

assert.equal(summary.turns, 200) // 100 agents on ticks 0 and 2
assert.equal(summary.llm.calls, 6) // 3 jobs x 2 ticks: the cohort shared the rest
assert.equal(summary.llm.cohortHits, 194)
assert.ok(exp.states().every(({ state }) => (state as { replies: number }).replies === 2))
if (!('archive' in summary.records)) throw new Error('records went elsewhere')
const calls = await readArchive(summary.records.archive, { table: 'llm_calls', exp: summary.exp })
assert.equal(calls.length, 6)
console.log(summary.records, summary.tickMs)
