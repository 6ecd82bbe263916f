import { randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { Embedder, MyriadError, Registry, SemanticIndex, type PmlMessage } from '../../src/index.js'
import { joinBatch } from '../../src/registry/batch.js'

let clock = 1_700_000_000_000
const m = (type: PmlMessage['type'], from: string, body: object, to?: string): PmlMessage =>
  ({ v: 1, type, msgId: randomUUID(), from, ts: clock++, body, ...(to ? { to } : {}) }) as PmlMessage

test('a batch applies message by message, bad ones rejected with a code and reason', async (t) => {
  const registry = Registry.create({ window: 10 })
  const results = await registry.process([
    m('register', 'a', { specialty: 'tax accountant', capacity: 1 }),
    '{"v":1,"type":"register"',
    JSON.stringify({ v: 2, type: 'register', msgId: 'x', from: 'b', ts: 1, body: { specialty: 's' } }),
    m('heartbeat', 'ghost', {}),
    m('result', 'a', { taskId: 't1', success: true, latencyMs: 80 }),
    m('feedback', 'user', { success: false }, 'a'),
  ])
  t.deepEqual(
    results.map((r) => [r.ok, r.error?.code]),
    [
      [true, undefined],
      [false, 'ERR_PML_JSON'],
      [false, 'ERR_PML_VERSION'],
      [false, 'ERR_UNKNOWN_AGENT'],
      [true, undefined],
      [true, undefined],
    ],
  )
  t.truthy(results[1].error?.reason)
  const a = registry.get('a')!
  t.is(a.specialty, 'tax accountant')
  t.is(a.trust, 0.5, 'one success and one failure over a Beta(1,1) prior')
  t.is(a.responseMs, 80)
  t.is(a.windowOutcomes, 2)
  t.deepEqual(registry.counters(), { processed: 3, rejected: 3, agents: 1 })
  t.is(registry.get('ghost'), undefined)
})

test('each message of a batch stands alone, whatever its text holds', async (t) => {
  // The batch crosses to Rust as one joined string split by lengths: a message's end must stay
  // its end even next to multi-byte text and lone surrogates. Async and sync paths alike.
  const batch = () => [
    m('register', 'agent-é', { specialty: 'traducteur 🙂 日本語', capacity: 2 }),
    '', // empty text
    JSON.stringify(m('register', 'b', { specialty: '\ud800' })), // escaped by JSON.stringify; text cannot hold it
    `{"v":1,"type":"register","msgId":"${randomUUID()}","from":"c","ts":1,"body":{"specialty":"\ud800"}}`, // a raw one becomes U+FFFD
    undefined as unknown as string, // not a message at all
    '{"v":1}\ud83d', // a high surrogate at the end, and a low one opening the next: not a pair
    `\ude00{"v":1,"type":"heartbeat","msgId":"${randomUUID()}","from":"c","ts":1,"body":{}}`,
    m('heartbeat', 'agent-é', { load: 1 }),
  ]
  const expected = [
    [true, undefined],
    [false, 'ERR_PML_JSON'],
    [false, 'ERR_PML_FIELD'],
    [true, undefined],
    [false, 'ERR_PML_JSON'],
    [false, 'ERR_PML_JSON'],
    [false, 'ERR_PML_JSON'],
    [true, undefined],
  ]
  for (const run of [(r: Registry) => r.process(batch()), async (r: Registry) => r.processSync(batch())]) {
    const registry = Registry.create()
    const results = await run(registry)
    t.deepEqual(
      results.map((r) => [r.ok, r.error?.code]),
      expected,
    )
    t.is(registry.get('agent-é')?.specialty, 'traducteur 🙂 日本語')
    t.is(registry.get('agent-é')?.load, 1)
    t.is(registry.get('c')?.specialty, '\ufffd')
  }
})

test('a batch past the joined-string limit goes in parts, in order, results aligned', async (t) => {
  const parts = joinBatch(['ab', 'c', '', 'defg', 'h'], 3)
  t.deepEqual(
    parts.map((p) => [p.text, [...p.lengths]]),
    [
      ['abc', [2, 1, 0]],
      ['defg', [4]],
      ['h', [1]],
    ],
  )
  t.deepEqual(
    joinBatch([]).map((p) => [p.text, [...p.lengths]]),
    [['', []]],
  )
  for (const sync of [false, true]) {
    const registry = Registry.create()
    ;(registry as unknown as { joinLimit: number }).joinLimit = 300 // about two messages a part
    const batch = [
      m('register', 'a', { specialty: 's' }),
      '{bad',
      m('heartbeat', 'a', { load: 3 }),
      m('heartbeat', 'ghost', {}),
      m('register', 'b', { specialty: 't' }),
      m('deregister', 'a', {}),
    ]
    t.true(
      joinBatch(
        batch.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))),
        300,
      ).length >= 3,
    )
    const results = sync ? registry.processSync(batch) : await registry.process(batch)
    t.deepEqual(
      results.map((r) => [r.ok, r.type, r.error?.code]),
      [
        [true, 'register', undefined],
        [false, undefined, 'ERR_PML_JSON'],
        [true, 'heartbeat', undefined],
        [false, 'heartbeat', 'ERR_UNKNOWN_AGENT'],
        [true, 'register', undefined],
        [true, 'deregister', undefined],
      ],
    )
    t.is(registry.get('a'), undefined, 'applied in order: the deregistration came last')
    t.truthy(registry.get('b'))
  }
})

test('replayed messages change nothing', (t) => {
  const registry = Registry.create()
  const batch = [m('register', 'a', { specialty: 'chef' }), m('result', 'a', { taskId: 't', success: true })]
  registry.processSync(batch)
  const before = registry.get('a')
  const again = registry.processSync(batch)
  t.true(again.every((r) => r.ok && r.duplicate))
  t.deepEqual(registry.get('a'), before)
  t.is(registry.counters().processed, 2)
})

test('status discovery and typed errors', (t) => {
  const registry = Registry.create()
  registry.handle(m('register', 'a', { specialty: 'x', capacity: 1 }))
  registry.handle(m('register', 'b', { specialty: 'y', capacity: 3 }))
  registry.handle(m('heartbeat', 'a', { load: 1 }))
  registry.handle(m('heartbeat', 'b', { status: 'offline' }))
  t.deepEqual(registry.byStatus('busy'), ['a'])
  t.deepEqual(registry.byStatus('offline'), ['b'])
  const e = t.throws(() => registry.byStatus('asleep' as 'idle'), { instanceOf: MyriadError })
  t.is(e?.code, 'ERR_INVALID_ARG')
})

test('many concurrent callers: every unique message applied exactly once', async (t) => {
  const registry = Registry.create()
  const agents = Array.from({ length: 50 }, (_, i) => `agent-${i}`)
  registry.processSync(agents.map((a) => m('register', a, { specialty: a })))
  const messages = agents.flatMap((a) => Array.from({ length: 40 }, (_, j) => m('result', a, { taskId: `t${j}`, success: j % 4 !== 0 })))
  // 50 clients send their own slice, async batches and single sync calls interleaved, with replays.
  await Promise.all(
    agents.map(async (_, c) => {
      const mine = messages.filter((_, i) => i % 50 === c)
      await registry.process(mine.slice(0, 20))
      for (const msg of mine.slice(20)) registry.handle(msg)
      await registry.process(mine) // replays
    }),
  )
  t.is(registry.counters().processed, 50 + messages.length)
  for (const a of agents) t.is(registry.get(a)!.totalOutcomes, 40)
})

test('snapshot and restore keep agents, ledgers and replay memory', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-registry-'))
  const registry = Registry.create({ window: 5 })
  const reg = m('register', 'a', { specialty: 'pilot' })
  registry.processSync([reg, m('result', 'a', { taskId: 't', success: true, latencyMs: 10 })])
  await registry.save(join(dir, 'r.json'))
  const back = await Registry.load(join(dir, 'r.json'))
  t.deepEqual(back.get('a'), registry.get('a'))
  t.true(back.handle(reg).duplicate)
  const bad = await t.throwsAsync(Registry.load(join(dir, 'absent.json')), { instanceOf: MyriadError })
  t.is(bad?.code, 'ERR_IO')
})

test('discovery by specialty goes through the semantic index', async (t) => {
  const embedder = await Embedder.load({ offline: true })
  const registry = Registry.create({ index: SemanticIndex.create({ embedder }) })
  registry.processSync([
    m('register', 'acct', { specialty: 'Certified accountant: income tax returns and deductions' }),
    m('register', 'dev', { specialty: 'Rust engineer: async runtimes and performance' }),
    m('register', 'vet', { specialty: 'Veterinarian for cats and dogs' }),
  ])
  const found = await registry.findBySpecialty('my cat is sick', 2)
  t.is(found[0].id, 'vet')
  t.is(found[0].specialty, 'Veterinarian for cats and dogs')
  t.true(found[0].score > found[1].score)
  registry.handle(m('deregister', 'vet', {}))
  const after = await registry.findBySpecialty('my cat is sick', 3)
  t.false(after.some((a) => a.id === 'vet'))
  t.is(after.length, 2)
})
