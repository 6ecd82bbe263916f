// defineAgent: a spec is checked where it is written, and its types flow into `ctx` and handlers.
import test from 'ava'
import { z } from 'zod'

import { type AgentContext, MyriadError, defineAgent } from '../../src/index.js'

const profile = z.object({ name: z.string(), age: z.number().int() })

test('a spec with a mistake is refused at defineAgent, with ERR_INVALID_ARG naming it', (t) => {
  const refused = (spec: unknown, what: RegExp) => {
    const error = t.throws(() => defineAgent(spec as never))
    t.true(error instanceof MyriadError)
    t.is((error as MyriadError).code, 'ERR_INVALID_ARG')
    t.regex(error.message, what)
  }
  refused({ name: 'has space', profile, state: {} }, /agent name/)
  refused({ name: '', profile, state: {} }, /agent name/)
  refused({ name: 'a', profile: { type: 'object' }, state: {} }, /zod schema/)
  refused({ name: 'a', profile, state: {}, messages: { 'agent-chat': z.object({}) } }, /bus kind/)
  refused({ name: 'a', profile, state: {}, messages: { Question: z.object({}) } }, /must match/)
  refused({ name: 'a', profile, state: {}, on: { question() {} } }, /does not declare/)
  refused({ name: 'a', profile, state: {}, every: 0 }, /every/)
  refused({ name: 'a', profile, state: {}, step: 'run' }, /step must be a function/)
})

test('every: n ticks or a predicate', (t) => {
  const everyThird = defineAgent({ name: 'a', profile, state: {}, every: 3 })
  t.deepEqual([0, 1, 2, 3, 4, 5, 6].map(everyThird.due), [true, false, false, true, false, false, true])
  const odd = defineAgent({ name: 'b', profile, state: {}, every: (tick) => tick % 2 === 1 })
  t.deepEqual([0, 1, 2].map(odd.due), [false, true, false])
  t.true(defineAgent({ name: 'c', profile, state: {} }).due(17))
})

test('a value state is copied per agent; a function state is made from the profile', (t) => {
  const shared = defineAgent({ name: 'a', profile, state: { list: [1] } })
  const one = shared.initialState({ name: 'x', age: 1 })
  one.list.push(2)
  t.deepEqual(shared.initialState({ name: 'y', age: 2 }).list, [1])
  const made = defineAgent({ name: 'b', profile, state: (p) => ({ greeting: `hi ${p.name}` }) })
  t.is(made.initialState({ name: 'Ada', age: 36 }).greeting, 'hi Ada')
})

test('types flow from the schemas into ctx and handlers', (t) => {
  const Agent = defineAgent({
    name: 'typed',
    profile,
    state: { count: 0 },
    messages: { question: z.object({ text: z.string() }) },
    step(ctx) {
      const age: number = ctx.profile.age
      ctx.state.count += age
      ctx.send('x', { text: 'hi' }, { kind: 'question' })
      // @ts-expect-error the body of a declared kind is checked against its schema
      ctx.send('x', { text: 42 }, { kind: 'question' })
      // @ts-expect-error ctx.profile is read-only
      ctx.profile.age = 3
    },
    on: {
      question(ctx, message) {
        const text: string = message.body.text
        ctx.state.count += text.length
      },
    },
  })
  const ctx = { profile: { name: 'a', age: 1 }, state: { count: 0 } } as unknown as AgentContext<z.output<typeof profile>, { count: number }>
  t.is(typeof Agent.step, 'function')
  t.is(ctx.state.count, 0)
})
