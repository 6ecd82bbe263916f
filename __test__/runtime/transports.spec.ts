// The runtime over real brokers and the real database: 10,000 agents deliver every message over
// the embedded MQTT broker and over Mosquitto; the records in Postgres equal the archive's after
// `importArchive`.
import test from 'ava'
import pg from 'pg'
import { z } from 'zod'

import { Experiment, defineAgent, embeddedBrokerUrl, importArchive } from '../../src/index.js'
import { DSN, archiveDir, cleanup, recorded } from './helpers.js'

const Sender = defineAgent({
  name: 'sender',
  profile: z.object({}),
  state: { got: 0 },
  step(ctx) {
    ctx.state.got += ctx.inbox.length
    ctx.send(`sender-${Math.floor(ctx.rand() * 10_000)}`, { from: ctx.id, tick: ctx.tick })
  },
})

for (const [name, bus] of [
  ['the embedded MQTT broker', 'embedded'],
  ['Mosquitto', 'mqtt://127.0.0.1:1883'],
] as const) {
  test.serial(`10,000 agents over ${name} deliver every message`, async (t) => {
    const dir = archiveDir('mqtt')
    const exp = new Experiment({
      name: 'mqtt-scale',
      seed: 1,
      population: [{ agent: Sender, count: 10_000, profiles: () => ({}) }],
      bus,
      sink: { archive: dir },
    })
    const summary = await exp.run({ ticks: 3 })
    t.deepEqual(summary.messages, { sent: 30_000, delivered: 30_000, failed: 0, lost: 0 })
    // Every message of ticks 0 and 1 was handled in the next tick; tick 2's arrived after the last.
    const got = exp.states().reduce((n, s) => n + (s.state as { got: number }).got, 0)
    t.is(got, 20_000)
    cleanup(dir)
  })
}

async function rows(schema: string, table: string, columns: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: DSN })
  await client.connect()
  try {
    return (await client.query(`SELECT ${columns} FROM "${schema}".${table} ORDER BY ${columns}`)).rows
  } finally {
    await client.end()
  }
}

test.serial('the records in Postgres and in the archive (after importArchive) are the same rows', async (t) => {
  const Chatty = defineAgent({
    name: 'chatty',
    profile: z.object({ n: z.number() }),
    state: { sum: 0 },
    step(ctx) {
      for (const m of ctx.inbox) ctx.state.sum += (m.body as { v: number }).v
      ctx.send(`chatty-${Math.floor(ctx.rand() * 30)}`, { v: Math.floor(ctx.rand() * 100) })
      ctx.record('sum', ctx.state.sum)
    },
  })
  const population = [{ agent: Chatty, count: 30, profiles: (i: number) => ({ n: i }) }]
  const clock = { start: 1_800_000_000_000 }
  const suffix = `${process.pid}_${Date.now()}`
  const direct = `rt_pg_${suffix}`
  const imported = `rt_arch_${suffix}`
  await new Experiment({ name: 'same-rows', seed: 9, population, clock, sink: { postgres: DSN, schema: direct } }).run({ ticks: 3 })
  const dir = archiveDir('same-rows')
  await new Experiment({ name: 'same-rows', seed: 9, population, clock, sink: { archive: dir } }).run({ ticks: 3 })
  await importArchive(dir, { dsn: DSN, schema: imported })
  for (const [table, columns] of [
    ['agents', 'agent_id, ts, tick, profile::text'],
    ['states', 'agent_id, ts, tick, state::text'],
    ['messages', 'msg_id, src, dst, kind, ts, tick, payload::text'],
    ['metrics', 'agent_id, name, tick, value, labels::text'],
  ] as const) {
    const where = table === 'metrics' ? ` WHERE agent_id IS NOT NULL` : ''
    const a = await rows(direct, `${table}${where}`, columns)
    const b = await rows(imported, `${table}${where}`, columns)
    t.true(a.length > 0, table)
    t.deepEqual(a, b, table)
  }
  cleanup(dir)
})

test.serial("a foreign MQTT client's message reaches the agent's next turn as its inbox, payload as JSON", async (t) => {
  const { default: mqtt } = await import('mqtt')
  const dir = archiveDir('foreign')
  const Listener = defineAgent({
    name: 'listener',
    profile: z.object({}),
    state: { heard: [] as unknown[] },
    async step(ctx) {
      for (const m of ctx.inbox) ctx.state.heard.push({ kind: m.kind, body: m.body })
      await new Promise((r) => setTimeout(r, 20))
    },
  })
  const exp = new Experiment({ name: 'foreign', population: [{ agent: Listener, count: 2, profiles: () => ({}) }], bus: 'embedded', sink: { archive: dir } })
  let sent = false
  exp.on('tick', (info) => {
    if (info.tick !== 0 || sent) return
    sent = true
    const client = mqtt.connect(embeddedBrokerUrl(5), { protocolVersion: 5 })
    client.on('connect', () => {
      client.publish(`exps/foreign.${exp.runId}/agents/listener-1/user-chat`, JSON.stringify({ question: 'how are you?' }), { qos: 1 }, () => client.end())
    })
  })
  // Long enough for the outside message to arrive between ticks.
  const summary = await exp.run({ ticks: 25 })
  const listener = exp.states().find((s) => s.id === 'listener-1')
  if (!listener) return t.fail('no listener-1')
  const heard = (listener.state as { heard: unknown[] }).heard
  t.deepEqual(heard, [{ kind: 'user-chat', body: { question: 'how are you?' } }])
  t.is(summary.errors.count, 0)
  cleanup(dir)
})

test.serial("an outside MQTT client interviews an agent: its question on the agent's user-chat topic, the reply on its own, both recorded", async (t) => {
  const { default: mqtt } = await import('mqtt')
  const dir = archiveDir('outside-interview')
  const Person = defineAgent({
    name: 'person',
    profile: z.object({ job: z.string() }),
    state: {},
    async step() {
      await new Promise((r) => setTimeout(r, 20))
    },
    on: { 'user-chat': (ctx, m) => `${ctx.profile.job} here, you asked: ${(m.body as { text: string }).text}` },
  })
  const exp = new Experiment({
    name: 'outside',
    population: [{ agent: Person, count: 3, profiles: (i) => ({ job: `job${i}` }) }],
    bus: 'embedded',
    sink: { archive: dir },
  })
  const reply = new Promise<Record<string, unknown>>((resolve) => {
    exp.once('tick', () => {
      const client = mqtt.connect(embeddedBrokerUrl(5), { protocolVersion: 5 })
      const inbox = `exps/outside.${exp.runId}/agents/reporter-1/user-chat`
      client.on('message', (_topic, payload) => {
        resolve(JSON.parse(payload.toString()))
        client.end()
      })
      client.on('connect', () =>
        client.subscribe(inbox, { qos: 1 }, () =>
          client.publish(`exps/outside.${exp.runId}/agents/person-2/user-chat`, JSON.stringify({ text: 'what do you do?', replyTo: 'reporter-1' }), { qos: 1 }),
        ),
      )
    })
  })
  const summary = await exp.run({ ticks: 40 })
  const got = await reply
  t.deepEqual(got, { text: 'job2 here, you asked: what do you do?', from: 'person-2', inReplyTo: null })
  t.is(summary.errors.count, 0)
  const rows = (await recorded(summary, 'messages')).filter((m) => m.kind === 'user-chat')
  t.deepEqual(
    rows.map((m) => [m.src, m.dst, (m.payload as { text: string }).text]),
    [
      ['reporter-1', 'person-2', 'what do you do?'],
      ['person-2', 'reporter-1', 'job2 here, you asked: what do you do?'],
    ],
  )
  cleanup(dir)
})
