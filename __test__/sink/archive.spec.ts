// Reading the Avro archive back with readArchive: the rows the Sink wrote come back equal and in
// order, every column present; a damaged file is ERR_CORRUPT_ARCHIVE.
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { type MyriadError, Sink, type SinkRows, readArchive } from '../../src/index.js'

const tempDir = () => mkdtempSync(join(tmpdir(), 'myriad-read-'))
const TS = 1_795_960_800_000

test('rows written to the archive read back equal, in order, per experiment or all', async (t) => {
  const dir = tempDir()
  const sink = await Sink.open({ dir, batchRows: 100 })
  const messages = Array.from({ length: 250 }, (_, i) => ({
    exp_id: i % 2 ? 'exp-b' : 'exp-a',
    msg_id: i % 7 ? randomUUID() : null,
    src: `agent-${i} "é" 🙂`,
    dst: i % 3 ? `agent-${i + 1}` : null,
    kind: 'chat',
    ts: TS + i,
    payload: { n: i, tags: ['a', null], nested: { ok: i % 2 === 0 } },
    tick: i < 10 ? -1 : i,
  })) satisfies SinkRows['messages'][]
  t.is((await sink.write('messages', messages)).accepted, 250)
  const calls = [
    {
      exp_id: 'exp-a',
      agent_id: 'a1',
      tick: 3,
      call_index: 0,
      ts: TS,
      model: 'gpt-x',
      request_hash: 'h0',
      request: { messages: [{ role: 'user', content: 'hi' }] },
      response: { text: 'hello' },
      prompt_tokens: 12,
      completion_tokens: 5,
      latency_ms: 812.5,
      outcome: 'ok',
    },
    {
      exp_id: 'exp-a',
      agent_id: 'a1',
      tick: 3,
      call_index: 1,
      ts: TS + 1,
      model: null,
      request_hash: 'h1',
      request: { messages: [] },
      response: null,
      prompt_tokens: null,
      completion_tokens: null,
      latency_ms: 30_000,
      outcome: 'timeout',
    },
  ] satisfies SinkRows['llm_calls'][]
  t.is((await sink.write('llm_calls', calls)).accepted, 2)
  // A row that leaves its nullable columns out, with a Date: they read back null, the time in ms.
  const sparse: SinkRows['states'] = { exp_id: 'exp-a', agent_id: 'a1', ts: new Date(TS + 0.5), state: { mood: 'ok' } }
  const states = await sink.write('states', [sparse, { ...sparse, tick: 1.5 }, { ...sparse, tick: 2 ** 53 }])
  t.is(states.accepted, 1)
  t.regex(states.rejected[0].reason, /^`tick`: expected an integer, got 1.5$/)
  t.regex(states.rejected[1].reason, /^`tick`: 9007199254740992 is outside the integers a JS number holds exactly/)
  await sink.close()

  const byExp = (exp: string) => messages.filter((m) => m.exp_id === exp)
  t.deepEqual(await readArchive(dir, { table: 'messages', exp: 'exp-a' }), byExp('exp-a'))
  t.deepEqual(await readArchive(dir, { table: 'messages' }), [...byExp('exp-a'), ...byExp('exp-b')], 'files by path, rows in order')
  t.deepEqual(await readArchive(dir, { table: 'llm_calls', exp: 'exp-a' }), calls)
  t.deepEqual(await readArchive(dir, { table: 'states' }), [{ exp_id: 'exp-a', agent_id: 'a1', ts: TS, state: { mood: 'ok' }, tick: null }])
  t.deepEqual(await readArchive(dir, { table: 'llm_calls', exp: 'exp-b' }), [])
  t.deepEqual(await readArchive(dir, { table: 'surveys' }), [])

  const missing = await t.throwsAsync(readArchive(join(dir, 'missing'), { table: 'messages' }))
  t.is((missing as MyriadError).code, 'ERR_IO')
  const unknown = await t.throwsAsync(readArchive(dir, { table: 'nope' as 'messages' }))
  t.is((unknown as MyriadError).code, 'ERR_INVALID_ARG')
})

test('a damaged archive file is ERR_CORRUPT_ARCHIVE', async (t) => {
  const dir = tempDir()
  const sink = await Sink.open({ dir, batchRows: 10 })
  const rows = Array.from({ length: 30 }, (_, i) => ({ exp_id: 'exp-d', agent_id: `a${i}`, ts: TS + i, state: { i }, tick: i }))
  t.is((await sink.write('states', rows)).accepted, 30)
  await sink.close()
  const path = join(dir, 'exp-d', 'states.avro')
  const bytes = readFileSync(path)
  t.is((await readArchive(dir, { table: 'states', exp: 'exp-d' })).length, 30)

  // A bad sync marker after the first block, with whole blocks after it: damage, not a torn end.
  const sync = bytes.subarray(bytes.length - 16)
  const header = bytes.indexOf(sync)
  const firstBlock = bytes.indexOf(sync, header + 16)
  const damaged = Buffer.from(bytes)
  damaged[firstBlock] ^= 0xff
  writeFileSync(path, damaged)
  const marker = await t.throwsAsync(readArchive(dir, { table: 'states' }))
  t.is((marker as MyriadError).code, 'ERR_CORRUPT_ARCHIVE')
  t.regex(marker.message, /damaged/)

  // Not an Avro file at all.
  writeFileSync(path, Buffer.concat([Buffer.from('XXXX'), bytes.subarray(4)]))
  const magic = await t.throwsAsync(readArchive(dir, { table: 'states', exp: 'exp-d' }))
  t.is((magic as MyriadError).code, 'ERR_CORRUPT_ARCHIVE')
  t.regex(magic.message, /not an Avro object container file/)
})
