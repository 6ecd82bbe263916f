// Steering a running population on the real components (local bus, Avro archive, the test LLM
// server): surveys answered by handlers and by the LLM, interventions, interviews, and their
// records (`surveys`, `events`, `messages`).
import test from 'ava'
import { z } from 'zod'

import { Experiment, type MyriadError, defineAgent, defineSurvey } from '../../src/index.js'
import { startLLMServer } from '../../src/testing/index.js'
import { archiveDir, cleanup, recorded } from './helpers.js'

const Person = z.object({ name: z.string(), age: z.number().int() })
const people = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `p${i}`, age: 20 + (i % 50) }))

const mood = defineSurvey({
  name: 'mood',
  questions: [
    { id: 'happy', kind: 'likert', text: 'I am happy', points: 5 },
    { id: 'party', kind: 'single', text: 'Which party?', options: ['red', 'blue', 'green'] },
    { id: 'news', kind: 'multiple', text: 'Where do you read news?', options: ['paper', 'tv', 'web'], min: 1 },
    { id: 'hours', kind: 'number', text: 'Hours online a day', min: 0, max: 24, integer: true },
    { id: 'why', kind: 'text', text: 'Why?', maxLength: 40 },
  ],
})

test('a survey that cannot be answered is ERR_SURVEY, naming what is wrong', (t) => {
  const refused = (spec: unknown, what: RegExp) => {
    const error = t.throws(() => defineSurvey(spec as never))
    t.is((error as MyriadError).code, 'ERR_SURVEY')
    t.regex(error.message, what)
  }
  refused({ name: 's', questions: [] }, /at least one question/)
  refused({ name: 's', questions: [{ id: 'q', kind: 'slider', text: 'x' }] }, /questions\.0\.kind/)
  refused({ name: 's', questions: [{ id: 'q', kind: 'single', text: 'x', options: ['only'] }] }, /at least 2 options/)
  refused({ name: 's', questions: [{ id: 'q', kind: 'number', text: 'x', min: 5, max: 1 }] }, /min must not exceed max/)
  refused({ name: 's', questions: [{ id: 'q', kind: 'multiple', text: 'x', options: ['a', 'b'], min: 2, max: 1 }] }, /min <= max/)
  refused(
    {
      name: 's',
      questions: [
        { id: 'q', kind: 'text', text: 'x' },
        { id: 'q', kind: 'text', text: 'y' },
      ],
    },
    /'q' is used twice/,
  )
})

test('a survey is answered once per agent and question, by handlers and by the LLM, and tallied', async (t) => {
  const dir = archiveDir('survey')
  const server = await startLLMServer()
  // Handlers answer for even-numbered agents (one of them wrongly), the LLM for the odd ones.
  const Citizen = defineAgent({
    name: 'citizen',
    profile: Person,
    state: { answered: 0 },
    on: {
      'user-survey'(ctx, message) {
        t.is(message.body.survey, 'mood')
        if (ctx.profile.age % 2 === 1) return undefined
        ctx.state.answered++
        if (ctx.id === 'citizen-0') return { happy: 9, party: 'red', news: ['web'], hours: 3, why: 'because' }
        return { happy: 4, party: 'blue', news: ['tv', 'web'], hours: 2, why: 'fine' }
      },
    },
  })
  const exp = new Experiment({
    name: 'survey',
    seed: 7,
    population: [{ agent: Citizen, count: 40, profiles: people(40) }],
    llm: { providers: [{ name: 'test', baseUrl: server.url, models: ['test'] }] },
    sink: { archive: dir },
  })
  const scheduled = exp.survey(mood, { atTick: 1 })
  t.is(scheduled.tick, 1)
  const summary = await exp.run({ ticks: 3 })
  const results = await scheduled.done
  const rows = await recorded(summary, 'surveys')
  t.is(rows.length, 40 * 5, 'one row per agent and question')
  t.is(new Set(rows.map((r) => `${r.agent_id}/${r.question}`)).size, 200)
  t.true(rows.every((r) => r.tick === 1 && r.form_id === 'mood'))
  const bad = rows.find((r) => r.agent_id === 'citizen-0' && r.question === 'happy')
  t.like(bad, { valid: false, answers: null, raw: '9' })
  const viaLLM = rows.filter((r) => r.agent_id === 'citizen-1')
  t.true(
    viaLLM.every((r) => r.valid === true),
    JSON.stringify(viaLLM),
  )
  t.is((await recorded(summary, 'llm_calls')).length, 20, 'the odd agents asked the LLM, once each')

  t.like(results, { survey: 'mood', tick: 1, asked: 40, responded: 40, responseRate: 1, complete: true })
  t.is(results.invalidRate, 1 / 200)
  const happy = results.questions.find((q) => q.id === 'happy')
  const validHappy = rows.filter((r) => r.question === 'happy' && r.valid).map((r) => r.answers as number)
  t.like(happy, { answered: 39, invalid: 1 })
  t.is(happy?.mean, validHappy.reduce((a, b) => a + b, 0) / validHappy.length)
  const party = results.questions.find((q) => q.id === 'party')
  t.is(party?.counts?.blue, rows.filter((r) => r.question === 'party' && r.answers === 'blue').length)
  t.deepEqual(exp.surveyResults('mood'), results)

  const events = await recorded(summary, 'events')
  t.like(events[0], { tick: 1, kind: 'survey', what: { survey: 'mood', asked: 40 } })
  t.is((events[0].who as { count: number }).count, 40)
  await server.close()
  cleanup(dir)
})

test('a sample is drawn with the seed, and a reply that fails its schema twice is recorded as invalid with what the model said', async (t) => {
  const server = await startLLMServer({ rules: [{ then: { reply: 'I would rather not say.' } }] })
  const Quiet = defineAgent({ name: 'quiet', profile: Person, state: {} })
  const asked = async () => {
    const dir = archiveDir('sample')
    const exp = new Experiment({
      name: 'sample',
      seed: 3,
      population: [{ agent: Quiet, count: 50, profiles: people(50) }],
      llm: { providers: [{ name: 'test', baseUrl: server.url, models: ['test'] }] },
      sink: { archive: dir },
    })
    const scheduled = exp.survey(mood, { sample: 0.2, where: (a) => (a.profile as { age: number }).age < 60 })
    const summary = await exp.run({ ticks: 1 })
    const rows = await recorded(summary, 'surveys')
    cleanup(dir)
    return { rows, results: await scheduled.done }
  }
  const first = await asked()
  const again = await asked()
  const who = (rows: Record<string, unknown>[]) => [...new Set(rows.map((r) => r.agent_id))].sort()
  t.is(who(first.rows).length, 8, '20% of the 40 agents under 60')
  t.deepEqual(who(first.rows), who(again.rows), 'the same seed asks the same agents')
  t.true(first.rows.every((r) => r.valid === false && r.raw === 'I would rather not say.'))
  t.like(first.results, { asked: 8, responded: 8, invalidRate: 1 })
  t.is(server.stats.requests, 2 * 8 * 2, 'each agent: the question and one repair')
  await server.close()
})

test('interventions change states, profiles, parameters and the population at their tick, each an events row', async (t) => {
  const dir = archiveDir('intervene')
  const seen: { tick: number; id: string; bonus: unknown; inbox: string[] }[] = []
  const Citizen = defineAgent({
    name: 'citizen',
    profile: Person,
    state: { level: 0 },
    messages: { news: z.object({ text: z.string() }) },
    step(ctx) {
      seen.push({ tick: ctx.tick, id: ctx.id, bonus: ctx.params.bonus, inbox: ctx.inbox.map((m) => `${m.kind}:${m.from}`) })
      ctx.state.level += (ctx.params.bonus as number) ?? 0
      if (ctx.id === 'citizen-1') ctx.send('citizen-0', 'hi')
    },
  })
  const exp = new Experiment({
    name: 'intervene',
    population: [{ agent: Citizen, count: 4, profiles: people(4) }],
    params: { bonus: 1 },
    sink: { archive: dir },
  })
  exp.at(1, (world) => {
    t.is(
      world.setState((a) => a.id !== 'citizen-3', { level: 100 }),
      3,
    )
    t.is(world.setProfile('citizen-2', { age: 99 }), 1)
    const bad = t.throws(() => world.setProfile('citizen-2', { age: 'old' }))
    t.is((bad as MyriadError).code, 'ERR_AGENT_PROFILE')
    t.is((t.throws(() => world.setState('nobody', {})) as MyriadError).code, 'ERR_UNKNOWN_AGENT')
    world.setParam('bonus', 10)
  })
  exp.at(2, (world) => {
    t.is(world.remove('citizen-0'), 1)
    t.is(world.broadcast('news', { text: 'deadline moved' }), 3)
    t.is((t.throws(() => world.broadcast('news', { text: 5 })) as MyriadError).code, 'ERR_MESSAGE_SCHEMA')
  })
  let everies = 0
  exp.every(2, () => {
    everies++
  })
  exp.on('tick', (info) => {
    if (info.tick === 2) t.is((t.throws(() => exp.at(2, () => {})) as MyriadError).code, 'ERR_TICK_PAST')
  })
  const summary = await exp.run({ ticks: 4 })
  t.is(everies, 2, 'ticks 0 and 2')
  t.deepEqual(summary.parked, ['citizen-0'])
  t.deepEqual(
    seen.filter((s) => s.tick === 1).map((s) => s.bonus),
    [10, 10, 10, 10],
  )
  t.deepEqual(seen.find((s) => s.tick === 2 && s.id === 'citizen-1')?.inbox, ['news:experimenter'])
  t.false(
    seen.some((s) => s.tick >= 2 && s.id === 'citizen-0'),
    'a removed agent takes no more turns',
  )
  const states = await recorded(summary, 'states')
  t.like(
    states.find((r) => r.agent_id === 'citizen-3' && r.tick === 1),
    { state: { level: 11 } },
  )
  t.like(
    states.find((r) => r.agent_id === 'citizen-0' && r.tick === 1 && (r.state as { level: number }).level === 100),
    { tick: 1 },
    'the intervention recorded the state it set',
  )
  t.like(
    (await recorded(summary, 'agents')).find((r) => r.tick === 1),
    { agent_id: 'citizen-2', profile: { type: 'citizen', name: 'p2', age: 99 } },
  )
  t.true(summary.messages.failed >= 1, "citizen-1's messages to the removed agent are failed deliveries")
  const events = await recorded(summary, 'events')
  t.deepEqual(
    events.map((e) => `${e.tick}:${e.kind}`),
    ['1:set-state', '1:set-profile', '1:set-param', '2:remove', '2:broadcast'],
  )
  t.like(events[2], { what: { name: 'bonus', value: 10, before: 1 } })
  t.like(events[3], { who: { count: 1, ids: ['citizen-0'] } })
  t.is((t.throws(() => exp.at(9, () => {})) as MyriadError).code, 'ERR_EXPERIMENT_STATE')
  cleanup(dir)
})

test('an interview is answered by the handler or by the LLM as the agent, and both sides are recorded', async (t) => {
  const dir = archiveDir('interview')
  const server = await startLLMServer({ record: true })
  const Citizen = defineAgent({
    name: 'citizen',
    profile: Person,
    state: { mood: 'calm' },
    step() {},
    on: {
      'user-chat'(ctx, message) {
        if (ctx.id === 'citizen-0') return `I am ${ctx.profile.name}; you asked: ${message.body.text}`
      },
    },
  })
  const exp = new Experiment({
    name: 'interview',
    population: [{ agent: Citizen, count: 3, profiles: people(3) }],
    llm: { providers: [{ name: 'test', baseUrl: server.url, models: ['test'] }] },
    sink: { archive: dir },
  })
  const before = exp.interview('citizen-0', 'How are you?')
  let during: Promise<string> | undefined
  exp.on('tick', (info) => {
    if (info.tick === 1) during = exp.interview('citizen-2', 'What do you do all day?')
  })
  const unknown = exp.interview('citizen-9', 'hello?')
  unknown.catch(() => {})
  const summary = await exp.run({ ticks: 4 })
  t.is(await before, 'I am p0; you asked: How are you?')
  t.is(await during, 'reply to: What do you do all day?')
  t.regex(
    String(server.received.at(-1)?.messages?.[0].content),
    /^You are citizen-2\. Your profile: \{"name":"p2","age":22\}\. Your current state: \{"mood":"calm"\}\./,
  )
  t.is(((await t.throwsAsync(unknown)) as MyriadError).code, 'ERR_UNKNOWN_AGENT')
  const chat = (await recorded(summary, 'messages')).filter((m) => m.kind === 'user-chat')
  t.deepEqual(
    chat.map((m) => `${m.tick} ${m.src} -> ${m.dst}: ${(m.payload as { text: string }).text}`),
    [
      '0 interviewer -> citizen-0: How are you?',
      '0 citizen-0 -> interviewer: I am p0; you asked: How are you?',
      '2 interviewer -> citizen-2: What do you do all day?',
      '2 citizen-2 -> interviewer: reply to: What do you do all day?',
    ],
  )
  t.is(((await t.throwsAsync(exp.interview('citizen-0', 'again?'))) as MyriadError).code, 'ERR_EXPERIMENT_STATE')
  await server.close()
  cleanup(dir)
})
