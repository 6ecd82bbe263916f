// Record and replay of LLM I/O on the real components (local bus, Avro archive or Postgres, the
// test LLM server): a replayed run writes the rows of the run it replays, without the server;
// a changed request is ERR_REPLAY_MISMATCH or, with onMiss 'live', a live call recorded as such.
import test from 'ava'
import { z } from 'zod'

import { Experiment, type ExperimentOptions, type MyriadError, type RunSummary, defineAgent, defineSurvey, readPostgres } from '../../src/index.js'
import { startLLMServer } from '../../src/testing/index.js'
import { DSN, type Row, archiveDir, cleanup, comparable, recorded } from './helpers.js'

const Person = z.object({ name: z.string(), topic: z.string() })
const TOPICS = ['rent', 'food', 'work', 'health']
const people = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `p${i}`, topic: TOPICS[i % TOPICS.length] }))

const opinion = defineSurvey({
  name: 'opinion',
  questions: [
    { id: 'worry', kind: 'likert', text: 'I worry about my topic', points: 5 },
    { id: 'act', kind: 'single', text: 'What will you do?', options: ['wait', 'ask', 'act'] },
  ],
})

/**
 * Agents that ask the LLM (chat, JSON, and a cohort call per topic) and tell a neighbour what it
 * said: what they send, and so the next turns' prompts, depend on the replies.
 */
const Talker = defineAgent({
  name: 'talker',
  profile: Person,
  state: { heard: [] as string[], mood: 0 },
  messages: { news: z.object({ text: z.string() }) },
  async step(ctx) {
    for (const m of ctx.inbox) if (m.kind === 'news') ctx.state.heard.push((m.body as { text: string }).text.slice(0, 20))
    if (ctx.rand() < 0.5) return
    const prompt = `${ctx.params.prefix ?? ''}${ctx.profile.name} on ${ctx.profile.topic}, heard ${ctx.state.heard.length}`
    const said = await ctx.llm.chat({ messages: [{ role: 'user', content: prompt }], maxTokens: 16 })
    const rated = await ctx.llm.json({
      messages: [{ role: 'user', content: `rate: ${said.text}` }],
      schema: z.object({ mood: z.number().int().min(-2).max(2) }),
    })
    ctx.state.mood += rated.data.mood
    const headline = await ctx.llm.cohort(ctx.profile.topic).chat({ messages: [{ role: 'user', content: `headline on ${ctx.profile.topic} at ${ctx.tick}` }] })
    await ctx.send(`talker-${Math.floor(ctx.rand() * 60)}`, { text: `${said.text} / ${headline.text}` }, { kind: 'news' })
  },
})

function options(name: string, sink: ExperimentOptions['sink'], llm: ExperimentOptions['llm'], params: Record<string, unknown> = {}): ExperimentOptions {
  return {
    name,
    seed: 7,
    population: [{ agent: Talker, count: 60, profiles: people(60) }],
    clock: { start: 1_800_000_000_000 },
    params,
    sink,
    llm,
  }
}

async function run(o: ExperimentOptions, ticks = 4): Promise<RunSummary> {
  const exp = new Experiment(o)
  exp.survey(opinion, { sample: 20, atTick: 2 })
  return exp.run({ ticks })
}

const TABLES = ['agents', 'states', 'messages', 'surveys', 'llm_calls', 'events'] as const
/** Every table's rows, without what differs between two runs of one seed (the exp id, latencies). */
async function records(summary: RunSummary): Promise<Record<string, Row[]>> {
  const out: Record<string, Row[]> = {}
  for (const table of TABLES) out[table] = comparable(await recorded(summary, table))
  return out
}

test('a replayed run writes the rows of the run it replays, with no provider, and says so in the summary', async (t) => {
  const dir = archiveDir('replay')
  const server = await startLLMServer({ latency: { fixedMs: 5 } })
  const provider = { providers: [{ name: 'test', baseUrl: server.url, models: ['test'] }] }
  const live = await run(options('replayed', { archive: `${dir}/live` }, provider))
  await server.close()
  t.is(live.errors.count, 0, JSON.stringify(live.errors.first[0]))
  t.true(live.llm.calls > 100, `${live.llm.calls} calls`)
  t.true(live.llm.cohortHits > 0)
  t.is(live.llm.replay, undefined)
  // The server is gone: every answer must come from the records.
  const again = await run(options('replayed', { archive: `${dir}/again` }, { replay: `${dir}/live` }))
  t.is(again.errors.count, 0, JSON.stringify(again.errors.first[0]))
  t.deepEqual(again.llm.replay, { answered: live.llm.calls, missed: 0, live: 0 })
  t.is(again.llm.calls, live.llm.calls)
  const [a, b] = [await records(live), await records(again)]
  for (const table of TABLES) t.deepEqual(b[table], a[table], table)
  t.true(a.surveys.length === 40 && a.surveys.every((r) => r.valid === true), 'the survey was answered through the LLM, and replayed')
  cleanup(dir)
})

test('a changed request is ERR_REPLAY_MISMATCH, or with onMiss live a live call recorded as such', async (t) => {
  const dir = archiveDir('replay-miss')
  const server = await startLLMServer()
  const provider = { providers: [{ name: 'test', baseUrl: server.url, models: ['test'] }] }
  const live = await run(options('miss', { archive: `${dir}/live` }, provider), 2)
  // A parameter changes the chat prompt: those calls (and so what follows them) no longer match.
  const strict = await run(options('miss', { archive: `${dir}/strict` }, { replay: `${dir}/live` }, { prefix: 'now ' }), 2)
  t.true(strict.errors.count > 0)
  t.is(strict.errors.first[0].code, 'ERR_REPLAY_MISMATCH')
  t.regex(strict.errors.first[0].message, /agent talker-\d+, tick 0, call 0: the request differs from the one miss\/\S+ recorded/)
  t.is(strict.llm.replay?.live, 0)
  const failed = (await recorded(strict, 'llm_calls')).filter((r) => r.outcome === 'ERR_REPLAY_MISMATCH')
  t.is(failed.length, strict.llm.replay?.missed ?? -1, 'every miss is an llm_calls row')
  const before = server.stats.requests
  const mixed = await run(options('miss', { archive: `${dir}/mixed` }, { ...provider, replay: `${dir}/live`, onMiss: 'live' }, { prefix: 'now ' }), 2)
  t.is(mixed.errors.count, 0)
  const rows = await recorded(mixed, 'llm_calls')
  const sentLive = rows.filter((r) => (r.request as { replay?: string }).replay === 'live')
  t.true(sentLive.length > 0)
  t.is(sentLive.length, mixed.llm.replay?.live ?? -1)
  t.is(server.stats.requests - before, sentLive.length, 'only the misses reached the server')
  t.is(mixed.llm.replay?.answered, rows.length - sentLive.length, 'the cohort calls, unchanged, were replayed')
  t.true(live.llm.calls > 0)
  await server.close()
  cleanup(dir)
})

test('a run recorded in Postgres replays from its rows there, and readPostgres gives the rows readArchive would', async (t) => {
  const dir = archiveDir('replay-pg')
  const server = await startLLMServer()
  const provider = { providers: [{ name: 'test', baseUrl: server.url, models: ['test'] }] }
  const live = await run(options('replay-pg', { postgres: DSN, schema: 'replay_test' }, provider), 3)
  await server.close()
  t.is(live.errors.count, 0)
  const again = await run(options('replay-pg', { archive: `${dir}/again` }, { replay: { from: DSN, exp: live.exp, schema: 'replay_test' } }), 3)
  t.deepEqual(again.llm.replay, { answered: live.llm.calls, missed: 0, live: 0 })
  for (const table of ['states', 'llm_calls', 'surveys'] as const) {
    const fromPg = comparable(await readPostgres(DSN, { table, exp: live.exp, schema: 'replay_test' }))
    t.deepEqual(comparable(await recorded(again, table)), fromPg, table)
  }
  const error = await t.throwsAsync(run(options('replay-pg', { archive: `${dir}/x` }, { replay: DSN })))
  t.is((error as MyriadError).code, 'ERR_INVALID_ARG')
  t.regex(error.message, /needs the run's id/)
  cleanup(dir)
})

test('replay options that cannot work are refused before anything starts', async (t) => {
  const dir = archiveDir('replay-bad')
  const refused = async (llm: unknown, code: string, what: RegExp) => {
    const error = await t.throwsAsync(async () => run(options('bad', { archive: `${dir}/run` }, llm as ExperimentOptions['llm'])))
    t.is((error as MyriadError).code as string, code, error.message)
    t.regex(error.message, what)
  }
  await refused({ replay: `${dir}/nothing-here` }, 'ERR_IO', /is not a directory/)
  await refused({}, 'ERR_INVALID_ARG', /llm needs providers, or a replay/)
  await refused({ replay: dir, onMiss: 'live' }, 'ERR_INVALID_ARG', /onMiss 'live' needs providers/)
  await refused({ replay: dir }, 'ERR_INVALID_ARG', /holds no recorded LLM calls/)
  cleanup(dir)
})

test('async clock: agents whose prompts do not depend on their inbox replay exactly', async (t) => {
  const dir = archiveDir('replay-async')
  const Diarist = defineAgent({
    name: 'diarist',
    profile: Person,
    state: { lines: 0, last: '' },
    async step(ctx) {
      const line = await ctx.llm.chat({ messages: [{ role: 'user', content: `${ctx.profile.name}, day ${ctx.tick}, ${Math.floor(ctx.rand() * 100)}` }] })
      ctx.state.lines++
      ctx.state.last = line.text
    },
  })
  // Latency with jitter: the live run's turns finish in an order the replay does not repeat.
  const server = await startLLMServer({ latency: { uniformMs: [1, 15] } })
  const o = (llm: ExperimentOptions['llm'], sub: string): ExperimentOptions => ({
    name: 'diary',
    seed: 11,
    population: [{ agent: Diarist, count: 40, profiles: people(40) }],
    clock: { mode: 'async', start: 1_800_000_000_000 },
    sink: { archive: `${dir}/${sub}` },
    llm,
  })
  const live = await new Experiment(o({ providers: [{ name: 'test', baseUrl: server.url, models: ['test'] }] }, 'live')).run({ ticks: 3 })
  await server.close()
  const again = await new Experiment(o({ replay: `${dir}/live` }, 'again')).run({ ticks: 3 })
  t.deepEqual(again.llm.replay, { answered: 120, missed: 0, live: 0 })
  for (const table of ['states', 'llm_calls'] as const) t.deepEqual(comparable(await recorded(again, table)), comparable(await recorded(live, table)), table)
  cleanup(dir)
})
