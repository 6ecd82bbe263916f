import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Sink } from '@myriad-agents/core'

const dir = await mkdtemp(join(tmpdir(), 'myriad-archive-'))
const sink = await Sink.open({ dir }) // or { dsn: 'postgres://user@host:5432/db' }: binary COPY

const { accepted, rejected } = await sink.write('messages', [
  { exp_id: 'exp-1', msg_id: randomUUID(), src: 'a1', dst: 'a2', kind: 'agent-chat', ts: new Date(), payload: { text: 'hi' } },
  { exp_id: 'exp-1', src: 'a1', ts: new Date('oops'), payload: {} }, // refused here, before any database
])
assert.equal(accepted, 1)
assert.equal(rejected[0].index, 1)
assert.match(rejected[0].reason, /`ts` is required \(an invalid Date/)

await sink.write('metrics', [{ exp_id: 'exp-1', ts: Date.now(), name: 'gdp', value: 1.25, labels: { region: 'north' } }])
await sink.flush() // every row accepted so far is durable (fsynced)
await sink.close() // accepted rows wait in memory until written: close before the process exits
assert.equal(sink.stats().written, 2)
assert.ok(existsSync(join(dir, 'exp-1', 'messages.avro'))) // <dir>/<exp_id>/<table>.avro
