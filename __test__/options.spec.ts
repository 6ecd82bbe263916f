// Options are zod schemas: a mistake is a typed error naming its path before anything starts,
// and the defaults the schemas fill in are the Rust core's.
import test from 'ava'

import {
  BusOptionsSchema,
  LLM,
  MyriadError,
  Policy,
  PolicyOptionsSchema,
  Registry,
  RegistryOptionsSchema,
  SemanticIndex,
  Sink,
  SinkOptionsSchema,
} from '../src/index.js'
import { native } from '../src/native/index.js'

const codeOf = async (f: () => unknown) => {
  try {
    await f()
  } catch (e) {
    return { code: (e as MyriadError).code, message: (e as Error).message, typed: e instanceof MyriadError }
  }
  return undefined
}

test('an unknown option is refused with its name', async (t) => {
  for (const f of [
    () => SemanticIndex.create({ dim: 4, storag: 'f16' } as never),
    () => Registry.create({ windw: 5 } as never),
    () => Policy.create({ sed: 1 } as never),
    () => Sink.open({ batchrows: 5 } as never),
  ]) {
    const got = await codeOf(f)
    t.is(got?.code, 'ERR_INVALID_ARG')
    t.true(got?.typed)
    t.regex(got?.message ?? '', /storag|windw|sed|batchrows/)
  }
})

test('a wrong type is refused with its path', async (t) => {
  const bad = await codeOf(() => Sink.open({ batchRows: -1 }))
  t.is(bad?.code, 'ERR_INVALID_ARG')
  t.regex(bad?.message ?? '', /^Sink options: batchRows: /)
  const qos = await codeOf(() => import('../src/index.js').then(({ Bus }) => Bus.connect({ exp: 'x', transport: 'local', qos: { 'agent-chat': 3 as never } })))
  t.regex(qos?.message ?? '', /qos\.agent-chat/)
  const llm = await codeOf(() => new LLM({ providers: [{ name: 'p', baseUrl: 'http://127.0.0.1:1/v1', models: ['m'] }], retries: 1.5 }))
  t.is(llm?.code, 'ERR_LLM_CONFIG')
  t.regex(llm?.message ?? '', /retries/)
})

test('the defaults filled in are the native core defaults', (t) => {
  const d = native.optionDefaults()
  t.deepEqual(RegistryOptionsSchema.parse({}), { window: d.registry.window, dedupeCapacity: d.registry.dedupeCapacity })
  const policy = PolicyOptionsSchema.parse({})
  t.deepEqual(policy.sizes, d.policy.sizes)
  t.is(policy.seed, d.policy.seed)
  t.is(SinkOptionsSchema.parse({}).batchRows, d.sink.batchRows)
  const bus = BusOptionsSchema.parse({ exp: 'x' })
  t.deepEqual([bus.qos['agent-chat'], bus.qos['user-chat'], bus.qos['user-survey']], d.bus.qos)
  t.is(bus.inboxCapacity, d.bus.inboxCapacity)
})
