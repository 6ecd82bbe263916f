// The experiment runtime on the real components: the local bus, the Avro archive, the test LLM
// server. Bad input, delivery at t + 1 in order, determinism, failure isolation, timeouts.
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

import test from 'ava'
import { z } from 'zod'

import { Experiment, MyriadError, defineAgent } from '../../src/index.js'
import { startLLMServer } from '../../src/testing/index.js'
import { archiveDir, cleanup, comparable, recorded } from './helpers.js'

const Named = z.object({ name: z.string() })
const named = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `n${i}` }))

test('a profile that fails its schema is ERR_AGENT_PROFILE naming the entry, index and issue, and nothing is written', async (t) => {
  const dir = archiveDir('profile')
  const Agent = defineAgent({ name: 'a', profile: z.object({ age: z.number().int() }), state: {} })
  const exp = new Experiment({
    name: 'bad',
    population: [{ agent: Agent, count: 3, profiles: [{ age: 1 }, { age: 2 }, { age: 'x' }] }],
    sink: { archive: join(dir, 'run') },
  })
  const error = await t.throwsAsync(exp.run({ ticks: 1 }))
  t.true(error instanceof MyriadError)
  t.is((error as MyriadError).code, 'ERR_AGENT_PROFILE')
  t.regex(error.message, /population\[0\] \(a\) profile 2: age: /)
  t.false(existsSync(join(dir, 'run')), 'no archive was opened')
  cleanup(dir)
})

test('population mistakes are typed errors before anything starts', async (t) => {
  const A = defineAgent({ name: 'same', profile: Named, state: {} })
  const B = defineAgent({ name: 'same', profile: Named, state: {} })
  const refused = async (population: unknown, what: RegExp) => {
    const error = await t.throwsAsync(new Experiment({ name: 'bad', population: population as never }).run({ ticks: 1 }))
    t.is((error as MyriadError).code, 'ERR_INVALID_ARG')
    t.regex(error.message, what)
  }
  await refused(
    [
      { agent: A, count: 1, profiles: named(1) },
      { agent: B, count: 1, profiles: named(1) },
    ],
    /two agent types are named 'same'/,
  )
  await refused([{ agent: A, count: -1, profiles: [] }], /count must be a non-negative integer/)
  await refused([{ agent: A, count: 1.5, profiles: named(2) }], /count must be a non-negative integer/)
  await refused([{ agent: A, count: 3, profiles: named(2) }], /asks for 3 agents but its profiles gave 2/)
  await refused([{ agent: A, count: 2, profiles: named(2), ids: () => 'dup' }], /already taken/)
  await refused([{ agent: A, count: 1, profiles: named(1), ids: () => '@cohort:x' }], /ids starting with @ are reserved/)
  const unknownKey = t.throws(() => new Experiment({ name: 'x', population: [], colck: {} } as never))
  t.is((unknownKey as MyriadError).code, 'ERR_INVALID_ARG')
})

test('run() on a running or finished experiment is ERR_EXPERIMENT_STATE', async (t) => {
  const dir = archiveDir('state')
  const Agent = defineAgent({ name: 'a', profile: Named, state: {}, step() {} })
  const exp = new Experiment({ name: 'twice', population: [{ agent: Agent, count: 2, profiles: named(2) }], sink: { archive: dir } })
  const first = exp.run({ ticks: 2 })
  const during = await t.throwsAsync(exp.run({ ticks: 1 }))
  t.is((during as MyriadError).code, 'ERR_EXPERIMENT_STATE')
  await first
  const after = await t.throwsAsync(exp.run({ ticks: 1 }))
  t.is((after as MyriadError).code, 'ERR_EXPERIMENT_STATE')
  cleanup(dir)
})

test('a message sent in tick t is in the inbox at t + 1, in send order per sender, senders in id order', async (t) => {
  const dir = archiveDir('order')
  const Talker = defineAgent({
    name: 'talker',
    profile: Named,
    state: { seen: [] as string[] },
    step(ctx) {
      ctx.state.seen.push(`t${ctx.tick}:${ctx.inbox.map((m) => `${m.from}/${m.body}@${m.tick}`).join(',')}`)
      if (ctx.tick === 0 && ctx.id !== 'talker-0') for (let n = 1; n <= 3; n++) ctx.send('talker-0', `${ctx.id}#${n}`)
    },
  })
  const exp = new Experiment({ name: 'order', population: [{ agent: Talker, count: 4, profiles: named(4) }], sink: { archive: dir } })
  const summary = await exp.run({ ticks: 2 })
  const zero = exp.states().find((s) => s.id === 'talker-0')?.state as { seen: string[] }
  t.is(zero.seen[0], 't0:')
  const expected = ['talker-1', 'talker-2', 'talker-3'].flatMap((id) => [1, 2, 3].map((n) => `${id}/${id}#${n}@0`)).join(',')
  t.is(zero.seen[1], `t1:${expected}`)
  t.deepEqual(summary.messages, { sent: 9, delivered: 9, failed: 0, lost: 0 })
  const messages = await recorded(summary, 'messages')
  t.is(messages.length, 9)
  t.true(messages.every((m) => m.tick === 0 && m.dst === 'talker-0'))
  cleanup(dir)
})

test('a message to an id that does not exist is a failed delivery, recorded and counted', async (t) => {
  const dir = archiveDir('unknown')
  const Agent = defineAgent({
    name: 'a',
    profile: Named,
    state: {},
    step(ctx) {
      if (ctx.tick === 0) ctx.send('nobody', { hi: 1 })
    },
  })
  const summary = await new Experiment({ name: 'unknown', population: [{ agent: Agent, count: 2, profiles: named(2) }], sink: { archive: dir } }).run({
    ticks: 1,
  })
  t.is(summary.messages.failed, 2)
  t.is(summary.messages.sent, 0)
  const errors = await recorded(summary, 'errors')
  t.is(errors.filter((e) => String(e.detail).startsWith('ERR_UNKNOWN_AGENT')).length, 2)
  cleanup(dir)
})

test('a body that fails its kind schema is ERR_MESSAGE_SCHEMA: a failed turn, nothing sent', async (t) => {
  const dir = archiveDir('schema')
  const Agent = defineAgent({
    name: 'a',
    profile: Named,
    state: {},
    messages: { ping: z.object({ n: z.number() }) },
    async step(ctx) {
      await ctx.send('a-0', { n: 'not a number' } as never, { kind: 'ping' })
    },
  })
  const summary = await new Experiment({ name: 'schema', population: [{ agent: Agent, count: 1, profiles: named(1) }], sink: { archive: dir } }).run({
    ticks: 1,
  })
  t.is(summary.errors.count, 1)
  t.is(summary.errors.first[0].code, 'ERR_MESSAGE_SCHEMA')
  t.is(summary.messages.sent, 0)
  cleanup(dir)
})

test('a throwing agent is recorded and parked after maxConsecutiveFailures while 999 others finish', async (t) => {
  const dir = archiveDir('parked')
  const Agent = defineAgent({
    name: 'worker',
    profile: z.object({ bad: z.boolean() }),
    state: { turns: 0 },
    step(ctx) {
      if (ctx.profile.bad) throw new Error('broken agent')
      ctx.state.turns++
    },
  })
  const profiles = Array.from({ length: 1000 }, (_, i) => ({ bad: i === 500 }))
  const summary = await new Experiment({ name: 'parked', population: [{ agent: Agent, count: 1000, profiles }], sink: { archive: dir } }).run({ ticks: 5 })
  t.deepEqual(summary.parked, ['worker-500'])
  t.is(summary.errors.count, 3)
  t.is(summary.errors.first[0].code, 'ERR_AGENT_TURN')
  t.regex(summary.errors.first[0].stack ?? '', /broken agent/)
  t.is(summary.turns, 999 * 5 + 3)
  const errors = await recorded(summary, 'errors')
  t.is(errors.filter((e) => e.comp === 'turn').length, 3)
  t.is(errors.filter((e) => String(e.detail).startsWith('ERR_AGENT_PARKED')).length, 1)
  cleanup(dir)
})

test('a hung LLM call is aborted by stepTimeoutMs and recorded; the tick goes on', async (t) => {
  const dir = archiveDir('timeout')
  const server = await startLLMServer({ rules: [{ match: 'hang', then: { hang: true } }] })
  const Agent = defineAgent({
    name: 'caller',
    profile: z.object({ hang: z.boolean() }),
    state: { answers: 0 },
    async step(ctx) {
      await ctx.llm.chat({ messages: [{ role: 'user', content: ctx.profile.hang ? 'hang' : 'hello' }] })
      ctx.state.answers++
    },
  })
  const started = performance.now()
  const summary = await new Experiment({
    name: 'timeout',
    population: [{ agent: Agent, count: 3, profiles: [{ hang: false }, { hang: true }, { hang: false }] }],
    llm: { providers: [{ name: 'test', baseUrl: server.url, models: ['m'] }], retries: 0 },
    stepTimeoutMs: 300,
    sink: { archive: dir },
  }).run({ ticks: 1 })
  t.true(performance.now() - started < 10_000)
  t.is(summary.errors.count, 1)
  t.is(summary.errors.first[0].code, 'ERR_STEP_TIMEOUT')
  t.is(summary.errors.first[0].agent, 'caller-1')
  const calls = await recorded(summary, 'llm_calls')
  t.is(calls.length, 3)
  t.deepEqual(calls.map((c) => c.outcome).sort(), ['ERR_LLM_ABORTED', 'ok', 'ok'])
  await server.close()
  cleanup(dir)
})

test('an LLM call without an llm configured fails the turn with ERR_LLM_NO_PROVIDER', async (t) => {
  const dir = archiveDir('nollm')
  const Agent = defineAgent({
    name: 'a',
    profile: Named,
    state: {},
    async step(ctx) {
      await ctx.llm.chat({ messages: [{ role: 'user', content: 'hi' }] })
    },
  })
  const summary = await new Experiment({ name: 'nollm', population: [{ agent: Agent, count: 1, profiles: named(1) }], sink: { archive: dir } }).run({
    ticks: 1,
  })
  t.is(summary.errors.first[0]?.code, 'ERR_LLM_NO_PROVIDER')
  cleanup(dir)
})

const Chatty = defineAgent({
  name: 'chatty',
  profile: Named,
  state: { sum: 0, got: 0 },
  step(ctx) {
    for (const m of ctx.inbox) {
      ctx.state.sum += m.body as number
      ctx.state.got++
    }
    const to = `chatty-${Math.floor(ctx.rand() * 50)}`
    ctx.send(to, Math.floor(ctx.rand() * 1000))
  },
})

const runChatty = async (seed: number) => {
  const dir = archiveDir('seed')
  const summary = await new Experiment({
    name: 'seeded',
    seed,
    population: [{ agent: Chatty, count: 50, profiles: named(50) }],
    clock: { start: 1_800_000_000_000 },
    sink: { archive: dir },
  }).run({
    ticks: 4,
  })
  const rows = {
    states: comparable(await recorded(summary, 'states')),
    messages: comparable(await recorded(summary, 'messages')),
    agents: comparable(await recorded(summary, 'agents')),
  }
  cleanup(dir)
  return rows
}

test('the same seed gives the same records; another seed does not', async (t) => {
  const [a, b, c] = [await runChatty(3), await runChatty(3), await runChatty(4)]
  t.is(a.messages.length, 200)
  t.deepEqual(a.messages, b.messages)
  t.deepEqual(a.states, b.states)
  t.deepEqual(a.agents, b.agents)
  t.notDeepEqual(a.messages, c.messages)
})

test('records: profiles and initial states at tick -1, changed states per tick, metrics per tick', async (t) => {
  const dir = archiveDir('records')
  const Counter = defineAgent({
    name: 'counter',
    profile: Named,
    state: { n: 0 },
    every: 2,
    step(ctx) {
      ctx.state.n++
      ctx.record('n', ctx.state.n)
    },
  })
  const summary = await new Experiment({ name: 'records', population: [{ agent: Counter, count: 3, profiles: named(3) }], sink: { archive: dir } }).run({
    ticks: 4,
  })
  const agents = await recorded(summary, 'agents')
  t.is(agents.length, 3)
  t.true(agents.every((a) => a.tick === -1 && (a.profile as { type: string }).type === 'counter'))
  const states = await recorded(summary, 'states')
  t.deepEqual(states.map((s) => s.tick).sort(), [-1, -1, -1, 0, 0, 0, 2, 2, 2])
  const metrics = await recorded(summary, 'metrics')
  t.is(metrics.filter((m) => m.name === 'n').length, 6)
  t.deepEqual(
    metrics.filter((m) => m.name === 'turns').map((m) => m.value),
    [3, 0, 3, 0],
  )
  t.true(readdirSync(dir).length > 0)
  cleanup(dir)
})

test('stop() ends the run cleanly after the turns in flight, with every record flushed', async (t) => {
  const dir = archiveDir('stop')
  const Agent = defineAgent({ name: 'a', profile: Named, state: { n: 0 }, step: (ctx) => void ctx.state.n++ })
  const exp = new Experiment({ name: 'stop', population: [{ agent: Agent, count: 10, profiles: named(10) }], sink: { archive: dir } })
  exp.on('tick', (info) => info.tick === 1 && exp.stop())
  const summary = await exp.run({ ticks: 100 })
  t.true(summary.stopped)
  t.is(summary.ticks, 2)
  t.is((await recorded(summary, 'states')).filter((s) => s.tick === 1).length, 10)
  cleanup(dir)
})

test('the async clock: no barrier, every agent takes its turns, messages reach the next turn', async (t) => {
  const dir = archiveDir('async')
  const Agent = defineAgent({
    name: 'a',
    profile: Named,
    state: { turns: 0, got: 0 },
    async step(ctx) {
      ctx.state.turns++
      ctx.state.got += ctx.inbox.length
      if (ctx.id === 'a-0') await new Promise((r) => setTimeout(r, 30))
      await ctx.send(`a-${(Number(ctx.id.slice(2)) + 1) % 20}`, ctx.tick)
    },
  })
  const exp = new Experiment({
    name: 'async',
    population: [{ agent: Agent, count: 20, profiles: named(20) }],
    clock: { mode: 'async' },
    sink: { archive: dir },
  })
  const summary = await exp.run({ ticks: 5 })
  t.is(summary.turns, 100)
  t.is(summary.ticks, 5)
  t.true(exp.states().every(({ state }) => (state as { turns: number }).turns === 5))
  t.is(summary.messages.sent, 100)
  // What arrives after its receiver's last turn waits in its inbox: delivered, as in lockstep.
  t.is(summary.messages.delivered, 100)
  t.is(summary.messages.failed, 0)
  t.is(summary.messages.lost, 0)
  cleanup(dir)
})

test('what a turn starts without awaiting ends with the turn, and a bad send fails the turn, not the process', async (t) => {
  const dir = archiveDir('unawaited')
  const server = await startLLMServer({ latency: { fixedMs: 30 } })
  const Agent = defineAgent({
    name: 'a',
    profile: z.object({ bad: z.boolean() }),
    state: { replied: 0 },
    messages: { ping: z.object({ n: z.number() }) },
    step(ctx) {
      // Neither call is awaited: the LLM call still finishes within the turn.
      void ctx.llm.chat({ messages: [{ role: 'user', content: 'hi' }] }).then(() => {
        ctx.state.replied++
      })
      if (ctx.profile.bad) void ctx.send('a-0', { n: 'x' } as never, { kind: 'ping' })
    },
  })
  const summary = await new Experiment({
    name: 'unawaited',
    population: [{ agent: Agent, count: 2, profiles: [{ bad: false }, { bad: true }] }],
    llm: { providers: [{ name: 'test', baseUrl: server.url, models: ['m'] }] },
    sink: { archive: dir },
  }).run({ ticks: 2 })
  t.is(summary.errors.count, 2)
  t.true(summary.errors.first.every((e) => e.agent === 'a-1' && e.code === 'ERR_MESSAGE_SCHEMA'))
  const states = await recorded(summary, 'states')
  t.deepEqual(
    states.filter((s) => s.agent_id === 'a-0').map((s) => [s.tick, (s.state as { replied: number }).replied]),
    [
      [-1, 0],
      [0, 1],
      [1, 2],
    ],
  )
  await server.close()
  cleanup(dir)
})
