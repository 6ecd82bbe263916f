// The recording sink from TypeScript, against the real PostgreSQL on 127.0.0.1:5432 (database
// `test`, one schema per test) and the Avro archive in a temporary directory.
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

import test from 'ava'
import pg from 'pg'

import { type MyriadError, Sink, importArchive, migrate, type SinkRows } from '../../src/index.js'

const DSN = 'postgres://root@127.0.0.1:5432/test'
let schemas = 0
const freshSchema = (tag: string) => `ts_${tag}_${process.pid}_${schemas++}`

async function scalar(sql: string): Promise<number> {
  const client = new pg.Client({ connectionString: DSN })
  await client.connect()
  try {
    return Number(Object.values((await client.query(sql)).rows[0])[0])
  } finally {
    await client.end()
  }
}

function messages(exp: string, n: number, first = 0): SinkRows['messages'][] {
  return Array.from({ length: n }, (_, i) => ({
    exp_id: exp,
    msg_id: randomUUID(),
    src: `agent-${(first + i) % 100}`,
    dst: `agent-${(first + i + 1) % 100}`,
    ts: new Date(1_795_960_800_000 + first + i),
    payload: { text: `hello ${first + i}`, n: first + i },
  }))
}

test('rows written from JS land in Postgres; bad rows are rejected by index with a reason', async (t) => {
  const schema = freshSchema('rt')
  const sink = await Sink.open({ dsn: DSN, schema, batchRows: 500 })
  const good = await sink.write('messages', messages('exp-js', 3000))
  t.deepEqual(good, { accepted: 3000, rejected: [] })
  const out = await sink.write('metrics', [
    { exp_id: 'exp-js', ts: Date.now(), name: 'gdp', value: 1.25 },
    { exp_id: 'exp-js', ts: Date.now(), name: 'gdp', value: Number.NaN },
    { exp_id: 'exp-js', ts: new Date('not a date'), name: 'gdp', value: 1 },
    { exp_id: 'exp-js', ts: '2026-11-29T10:00:00+02:00', name: 'gdp', value: 2, labels: { region: 'north' } },
  ])
  t.is(out.accepted, 2)
  t.deepEqual(
    out.rejected.map((r) => r.index),
    [1, 2],
  )
  t.regex(out.rejected[0].reason, /value.*NaN/)
  t.regex(out.rejected[1].reason, /ts.*invalid Date/)
  await sink.flush()
  t.like(sink.stats(), { accepted: 3002, written: 3002, rejected: 2, lag: 0 })
  t.is(await scalar(`SELECT count(DISTINCT msg_id) FROM ${schema}.messages`), 3000)
  t.is(await scalar(`SELECT (payload->>'n')::int FROM ${schema}.messages WHERE ts = '2026-11-29T14:00:00.042Z'`), 42)
  t.is(await scalar(`SELECT extract(epoch FROM ts) FROM ${schema}.metrics WHERE labels->>'region' = 'north'`), Date.parse('2026-11-29T08:00:00Z') / 1000)
  await sink.close()
})

test('without a dsn rows go to the Avro archive, which imports into Postgres once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-archive-'))
  const sink = await Sink.open({ dir })
  t.is((await sink.write('messages', messages('exp-a', 2500))).accepted, 2500)
  const answer = { exp_id: 'exp-a', agent_id: 'a1', ts: 0, tick: 4, form_id: 'f1', question: 'q1', latency_ms: 12.5 }
  const surveys = [
    { ...answer, answers: 3, raw: '3', valid: true },
    { ...answer, question: 'q2', answers: null, raw: 'eleven', valid: false },
    // Keyed (a time as an ISO string): the boolean is checked there too.
    { ...answer, ts: '2026-11-29T08:00:00Z', question: 'q3', answers: 'yes', raw: null, valid: true },
    { ...answer, question: 'q4', answers: 1, valid: 'yes' },
  ]
  const wrote = await sink.write('surveys', surveys as SinkRows['surveys'][])
  t.is(wrote.accepted, 3)
  t.deepEqual(wrote.rejected, [{ index: 3, reason: '`valid`: expected true or false, got "yes"' }])
  await sink.close()
  t.like(sink.stats(), { accepted: 2503, written: 2503, lag: 0 })
  const schema = freshSchema('imp')
  t.deepEqual(await importArchive(dir, { dsn: DSN, schema }), { files: 2, rows: 2503 })
  await importArchive(dir, { dsn: DSN, schema })
  t.is(await scalar(`SELECT count(*) FROM ${schema}.messages`), 2500)
  t.is(await scalar(`SELECT (answers #>> '{}')::int FROM ${schema}.surveys WHERE question = 'q1' AND valid`), 3)
  t.is(await scalar(`SELECT count(*) FROM ${schema}.surveys WHERE NOT valid AND raw = 'eleven' AND answers IS NULL`), 1)
  t.is(await scalar(`SELECT count(*) FROM ${schema}.surveys WHERE valid`), 2)
})

test('misuse gets typed errors', async (t) => {
  const refused = await t.throwsAsync(Sink.open({ dsn: 'postgres://root@127.0.0.1:1/test', connectTimeoutMs: 2000 }))
  t.is((refused as MyriadError).code, 'ERR_SINK_CONNECT')
  const sink = await Sink.open({ dsn: DSN, schema: freshSchema('err') })
  const unknown = await t.throwsAsync(sink.write('nope' as 'messages', []))
  t.is((unknown as MyriadError).code, 'ERR_INVALID_ARG')
  const bigint = await t.throwsAsync(sink.write('metrics', [{ exp_id: 'e', ts: 1, name: 'n', value: 1, labels: { big: 1n } }]))
  t.is((bigint as MyriadError).code, 'ERR_INVALID_ARG')
  await sink.close()
  const closed = await t.throwsAsync(sink.write('messages', messages('exp', 1)))
  t.is((closed as MyriadError).code, 'ERR_SINK_CLOSED')
  const badSchema = await t.throwsAsync(migrate(DSN, { schema: 'Robert"); DROP TABLE x;--' }))
  t.is((badSchema as MyriadError).code, 'ERR_INVALID_ARG')
  for (const maxPendingBytes of [1000, 2 ** 32, 1.5]) {
    const bound = await t.throwsAsync(Sink.open({ dsn: DSN, schema: freshSchema('err'), maxPendingBytes }))
    t.is((bound as MyriadError).code, 'ERR_INVALID_ARG', `maxPendingBytes ${maxPendingBytes}`)
  }
})

test('myriad db migrate creates the schema once', async (t) => {
  const schema = freshSchema('cli')
  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], { cwd: join(import.meta.dirname, '..', '..') })
  t.regex((await cli('db', 'migrate', '--dsn', DSN, '--schema', schema)).stdout, /applied migrations 1, 2, 3/)
  t.regex((await cli('db', 'migrate', '--dsn', DSN, '--schema', schema)).stdout, /up to date/)
  t.is(
    await scalar(
      `SELECT count(*) FROM information_schema.tables WHERE table_schema = '${schema}' AND table_name IN ('agents','states','messages','surveys','errors','metrics','llm_calls','events')`,
    ),
    8,
  )
  const failed = await t.throwsAsync(cli('db', 'import', join(tmpdir(), 'no-such-archive'), '--dsn', DSN, '--schema', schema))
  t.regex((failed as Error & { stderr: string }).stderr, /myriad: ERR_IO/)
})

test('rows of every shape get the same outcome as the keyed form (the column form is an encoding detail)', async (t) => {
  const schema = freshSchema('shape')
  const sink = await Sink.open({ dsn: DSN, schema })
  const base = { exp_id: 'exp-shape', agent_id: 'a1', ts: new Date(1_795_960_800_000) }
  class WithToJson {
    toJSON() {
      return { ...base, state: { via: 'toJSON' } }
    }
  }
  const rows: unknown[] = [
    { ...base, state: { ok: 1 } }, // 0: fast form
    { ...base, state: { ok: 2 }, mood: 'x' }, // 1: unknown column
    [base.exp_id, base.agent_id, 0, {}], // 2: an array is not a row
    { ...base, agent_id: undefined, state: {} }, // 3: required column undefined
    { ...base, ts: '2026-11-29T14:00:00.001Z', state: { at: new Date(0) } }, // 4: ISO string; a Date inside jsonb stays ISO
    new WithToJson(), // 5: its toJSON decides, as JSON.stringify would
    null, // 6
    7, // 7
    { ...base, ts: new Date(Number.NaN), state: {} }, // 8: invalid Date
  ]
  const out = await sink.write('states', rows as SinkRows['states'][])
  t.is(out.accepted, 3)
  t.deepEqual(
    out.rejected.map((r) => r.index),
    [1, 2, 3, 6, 7, 8],
  )
  const reason = (i: number) => out.rejected.find((r) => r.index === i)?.reason ?? ''
  t.regex(reason(1), /unknown column `mood`/)
  t.regex(reason(2), /must be an object keyed by column name, got an array/)
  t.regex(reason(3), /`agent_id` is required/)
  t.regex(reason(6), /must be an object.*got null/)
  t.regex(reason(8), /`ts` is required \(an invalid Date/)
  await sink.close()
  t.is(await scalar(`SELECT count(*) FROM ${schema}.states WHERE (state->>'ok')::int = 1 AND ts = '2026-11-29T14:00:00Z'`), 1)
  t.is(await scalar(`SELECT count(*) FROM ${schema}.states WHERE state->>'at' = '1970-01-01T00:00:00.000Z'`), 1)
  t.is(await scalar(`SELECT count(*) FROM ${schema}.states WHERE state->>'via' = 'toJSON'`), 1)
})

test('the column form keeps text exactly, stores nulls as null and refuses what Postgres cannot hold', async (t) => {
  const schema = freshSchema('columns')
  const sink = await Sink.open({ dsn: DSN, schema })
  const ts = new Date(1_795_960_800_000)
  const id = randomUUID()
  const rows: SinkRows['messages'][] = [
    { exp_id: 'exp-col', msg_id: id, src: 'héllo 🙂 "q" \\ \t\n', dst: null, kind: undefined, ts, payload: { n: 0 } }, // 0
    { exp_id: 'exp-col', src: 'a\ud800b', ts, payload: {} }, // 1: lone surrogate in text
    { exp_id: 'exp-col', msg_id: 'not-a-uuid', src: 'x', ts, payload: {} }, // 2
    { exp_id: 'exp-col', src: 'nul\u0000', ts, payload: {} }, // 3
    { exp_id: 'exp-col', src: 'keyed', ts: '2026-11-29T14:00:00.500Z', payload: { n: 4 } }, // 4: keyed (ISO time) between column rows
    { exp_id: 'exp-col', src: 'plain', ts: 1_795_960_800_250, payload: { n: 5, s: '🙂' } }, // 5: epoch ms
    { exp_id: 'exp-col', src: 'late', ts: new Date(8.64e15), payload: null }, // 6: payload required
    // 7: an inherited column value is not the row's own, as JSON sees it
    Object.assign(Object.create({ src: 'inherited' }), { exp_id: 'exp-col', ts, payload: {} }),
  ]
  const out = await sink.write('messages', rows)
  t.is(out.accepted, 3)
  const reasons = Object.fromEntries(out.rejected.map((r) => [r.index, r.reason]))
  t.deepEqual(Object.keys(reasons).map(Number), [1, 2, 3, 6, 7])
  t.regex(reasons[1], /`src`: invalid text: lone UTF-16 surrogates/)
  t.regex(reasons[2], /`msg_id`: `not-a-uuid` is not a UUID/)
  t.regex(reasons[3], /`src`: contains a NUL character/)
  t.regex(reasons[6], /`payload` is required/)
  t.regex(reasons[7], /`src` is required/)
  const metrics = await sink.write('metrics', [
    { exp_id: 'exp-col', ts, name: 'gdp', value: 1.5, labels: { k: 'v' } },
    { exp_id: 'exp-col', ts, name: 'gdp', value: Number.POSITIVE_INFINITY },
    { exp_id: 'exp-col', ts, name: 'gdp', value: Number.NaN, labels: null },
  ])
  t.is(metrics.accepted, 1)
  t.regex(metrics.rejected[0].reason, /`value` is required \(NaN and Infinity/)
  t.deepEqual(
    metrics.rejected.map((r) => r.index),
    [1, 2],
  )
  await sink.close()
  const client = new pg.Client({ connectionString: DSN })
  await client.connect()
  try {
    const stored = await client.query(`SELECT msg_id, src, dst, kind, ts, payload FROM ${schema}.messages ORDER BY (payload->>'n')::int`)
    t.deepEqual(
      stored.rows.map((r) => [r.msg_id, r.src, r.dst, r.kind, (r.ts as Date).getTime(), r.payload]),
      [
        [id, 'héllo 🙂 "q" \\ \t\n', null, null, ts.getTime(), { n: 0 }],
        [null, 'keyed', null, null, Date.parse('2026-11-29T14:00:00.500Z'), { n: 4 }],
        [null, 'plain', null, null, 1_795_960_800_250, { n: 5, s: '🙂' }],
      ],
    )
    t.is(await scalar(`SELECT count(*) FROM ${schema}.metrics WHERE value = 1.5 AND labels->>'k' = 'v'`), 1)
  } finally {
    await client.end()
  }
})
