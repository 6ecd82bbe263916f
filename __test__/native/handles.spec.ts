// One pattern for every class over a native object: a private constructor (a type error in
// TypeScript) that also refuses plain JavaScript callers with a typed error naming the factory.
import test from 'ava'

import { Bus, Embedder, MyriadError, Policy, Registry, SemanticIndex, Sink } from '../../src/index.js'

test('the constructors are private to TypeScript', (t) => {
  // Each line fails to type-check if the constructor is public: `npm run typecheck` checks them.
  const attempts = [
    // @ts-expect-error private constructor
    () => new Policy({ seed: 42 }),
    // @ts-expect-error private constructor
    () => new SemanticIndex({ dim: 4 }),
    // @ts-expect-error private constructor
    () => new Registry({ window: 50 }),
    // @ts-expect-error private constructor
    () => new Embedder(),
    // @ts-expect-error private constructor
    () => new Bus({ exp: 'x' }),
    // @ts-expect-error private constructor
    () => new Sink(),
  ]
  t.is(attempts.length, 6)
})

const factories: [string, new (...args: unknown[]) => unknown, string][] = [
  ['Policy', Policy as never, 'Policy.create'],
  ['SemanticIndex', SemanticIndex as never, 'SemanticIndex.create'],
  ['Registry', Registry as never, 'Registry.create'],
  ['Embedder', Embedder as never, 'Embedder.load'],
  ['Bus', Bus as never, 'Bus.connect'],
  ['Sink', Sink as never, 'Sink.open'],
]

for (const [name, Class, factory] of factories) {
  test(`new ${name}(...) from JavaScript is ERR_INVALID_ARG naming ${factory}`, (t) => {
    const error = t.throws(() => new Class({ seed: 42, dim: 4, exp: 'x' }))
    t.true(error instanceof MyriadError)
    t.is((error as MyriadError).code, 'ERR_INVALID_ARG')
    t.true(error.message.includes(factory), error.message)
  })
}

test('the factories make working objects', (t) => {
  t.is(Policy.create({ seed: 1 }).actions, 5)
  t.is(SemanticIndex.create({ dim: 4 }).dim, 4)
  t.is(Registry.create().size, 0)
})
