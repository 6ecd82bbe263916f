import assert from 'node:assert/strict'

import { Bus, type BusMessage } from '@myriad-agents/core'

// One Bus per agent group. `transport: 'local'` routes inside this process; without it and
// without a url: the embedded MQTT broker; { url: 'mqtt://127.0.0.1:1883' }: Mosquitto or EMQX.
const group = await Bus.connect({ transport: 'local', exp: 'exp-1', group: 'g0', agents: ['alice', 'bob'] })
const others = await Bus.connect({ transport: 'local', exp: 'exp-1', group: 'g1' })

const arrived = new Promise<BusMessage[]>((resolve) => {
  const received: BusMessage[] = []
  group.onMessages((batch) => {
    received.push(...batch) // one batch per event-loop turn
    if (received.length === 3) resolve(received)
  })
})
group.onGap((gap) => console.warn('missing messages', gap)) // a sender's seq jumped

const accepted = await others.publish([
  { to: 'bob', kind: 'agent-chat', from: 'carol', payload: JSON.stringify({ text: 'hi' }) },
  { to: 'bob', kind: 'agent-chat', from: 'carol', payload: JSON.stringify({ text: 'still there?' }) },
  { to: 'alice', kind: 'user-survey', payload: Buffer.from([1, 2, 3]) },
])
assert.equal(accepted, 3) // resolves once every message is accepted under its kind's QoS

const toBob = (await arrived).filter((m) => m.agentId === 'bob')
assert.deepEqual(
  toBob.map((m) => [m.from, m.seq, JSON.parse(m.payload.toString()).text]),
  [
    ['carol', 1, 'hi'],
    ['carol', 2, 'still there?'],
  ],
)

await others.drain() // everything published so far acknowledged
await others.close() // end marks, drain, disconnect, deliver what is queued
await group.close() // an open bus keeps Node running, like a socket
assert.equal(others.stats().published, 3)
