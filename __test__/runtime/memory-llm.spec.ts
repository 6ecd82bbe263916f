// ctx.memory on the real model, and ctx.llm's per-agent budget.
import test from 'ava'
import { z } from 'zod'

import { Experiment, defineAgent } from '../../src/index.js'
import { startLLMServer } from '../../src/testing/index.js'
import { archiveDir, cleanup, recorded } from './helpers.js'

const NOTES = ['I paid my income tax late and got a fine', 'The bakery on the corner sells sourdough bread', 'My bicycle chain broke on the way to work']

test('memory: texts are embedded (a repeated one once) and recalled by meaning, per agent', async (t) => {
  const dir = archiveDir('memory')
  const Agent = defineAgent({
    name: 'rememberer',
    profile: z.object({}),
    state: { recalled: [] as string[], size: 0 },
    async step(ctx) {
      if (ctx.tick === 0) for (const note of NOTES) await ctx.memory.add(note)
      else {
        const [best] = await ctx.memory.recall('Where can I buy fresh bread?', 2)
        ctx.state.recalled.push(best.text)
        ctx.state.size = ctx.memory.size
      }
    },
  })
  const summary = await new Experiment({ name: 'memory', population: [{ agent: Agent, count: 4, profiles: () => ({}) }], sink: { archive: dir } }).run({
    ticks: 2,
  })
  t.is(summary.errors.count, 0, JSON.stringify(summary.errors.first))
  t.deepEqual(summary.memory, { agents: 4, texts: 12, embedded: 4 }, 'three distinct notes and one query, each embedded once for all four agents')
  const states = await recorded(summary, 'states')
  const last = states.filter((s) => s.tick === 1)
  t.is(last.length, 4)
  for (const s of last) t.deepEqual(s.state, { recalled: [NOTES[1]], size: 3 })
  cleanup(dir)
})

test('llm: a per-agent budget of calls per tick fails the call past it with ERR_LLM_BUDGET; every call is recorded with its index', async (t) => {
  const dir = archiveDir('budget')
  const server = await startLLMServer()
  const Agent = defineAgent({
    name: 'caller',
    profile: z.object({}),
    state: { ok: 0 },
    async step(ctx) {
      for (let i = 0; i < 3; i++) {
        await ctx.llm.chat({ messages: [{ role: 'user', content: `question ${i}` }] })
        ctx.state.ok++
      }
    },
  })
  const summary = await new Experiment({
    name: 'budget',
    population: [{ agent: Agent, count: 2, profiles: () => ({}) }],
    llm: { providers: [{ name: 'test', baseUrl: server.url, models: ['m'] }] },
    llmBudget: { callsPerTick: 2 },
    sink: { archive: dir },
  }).run({ ticks: 1 })
  t.is(summary.errors.count, 2)
  t.true(summary.errors.first.every((e) => e.code === 'ERR_LLM_BUDGET'))
  const calls = await recorded(summary, 'llm_calls')
  t.deepEqual(calls.map((c) => `${c.agent_id}#${c.call_index}:${c.outcome}`).sort(), ['caller-0#0:ok', 'caller-0#1:ok', 'caller-1#0:ok', 'caller-1#1:ok'])
  t.true(calls.every((c) => typeof c.request_hash === 'string' && (c.response as { text: string }).text.startsWith('reply to: question')))
  await server.close()
  cleanup(dir)
})
