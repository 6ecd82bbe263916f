// 10 agents greet each other for 3 ticks: no LLM, records in the Avro archive.
//   npx tsx examples/hello.ts
import { Experiment, defineAgent } from '@myriad-agents/core'
import { z } from 'zod'

const Greeter = defineAgent({
  name: 'greeter',
  profile: z.object({ name: z.string() }),
  state: { greeted: 0, heard: [] as string[] },
  messages: { hello: z.object({ text: z.string() }) },
  step(ctx) {
    // A random other agent, from the agent's own seeded stream.
    const other = `greeter-${Math.floor(ctx.rand() * 10)}`
    if (other !== ctx.id) {
      ctx.send(other, { text: `hello from ${ctx.profile.name}` }, { kind: 'hello' })
      ctx.state.greeted++
    }
  },
  on: {
    hello(ctx, message) {
      ctx.state.heard.push(message.body.text)
    },
  },
})

const names = ['Ada', 'Ben', 'Cleo', 'Dan', 'Eve', 'Fay', 'Gus', 'Hal', 'Ivy', 'Jo']
const exp = new Experiment({ name: 'hello', seed: 7, population: [{ agent: Greeter, count: 10, profiles: names.map((name) => ({ name })) }] })
exp.on('tick', (t) => console.log(`tick ${t.tick}: ${t.turns} turns, ${t.messages.sent} messages sent so far`))
const summary = await exp.run({ ticks: 3 })

console.log(`${summary.turns} turns, ${summary.messages.delivered} messages delivered, ${summary.messages.failed} failed`)
console.log('records:', summary.records)
for (const { id, state } of exp.states().slice(0, 3)) console.log(id, state)
