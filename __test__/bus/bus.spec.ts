import { randomUUID } from 'node:crypto'

import test from 'ava'
import mqtt from 'mqtt'

import { Bus, MyriadError, embeddedBrokerUrl, type BusGap, type BusMessage, type BusOptions } from '../../src/index.js'

const MOSQUITTO = 'mqtt://127.0.0.1:1883'
const agents = Array.from({ length: 20 }, (_, i) => `agent-${i}`)

/** Collects inbound batches until `n` messages arrived. */
function collect(bus: Bus, n: number, timeoutMs = 15_000): Promise<{ messages: BusMessage[]; batches: number }> {
  return new Promise((resolve, reject) => {
    const messages: BusMessage[] = []
    let batches = 0
    const timer = setTimeout(() => reject(new Error(`received ${messages.length} of ${n}; stats ${JSON.stringify(bus.stats())}`)), timeoutMs)
    bus.onMessages((batch) => {
      batches++
      messages.push(...batch)
      if (messages.length >= n) {
        clearTimeout(timer)
        resolve({ messages, batches })
      }
    })
  })
}

async function roundTrip(t: import('ava').ExecutionContext, base: Omit<BusOptions, 'exp'>, count = 5000) {
  const exp = `ava-${randomUUID().slice(0, 8)}`
  const receiver = await Bus.connect({ ...base, exp, group: 'receivers', agents })
  const sender = await Bus.connect({ ...base, exp, group: 'senders' })
  try {
    await sendAndCheck(t, exp, sender, receiver, count)
  } finally {
    // Closed whether the checks pass or not, so a failure does not keep the test file running.
    await sender.close()
    await receiver.close()
  }
  t.is(sender.stats().published, count)
}

async function sendAndCheck(t: import('ava').ExecutionContext, exp: string, sender: Bus, receiver: Bus, count: number) {
  const arrived = collect(receiver, count)
  const batch = Array.from({ length: count }, (_, i) => ({
    to: agents[i % agents.length],
    kind: 'agent-chat' as const,
    from: `agent-${(i + 1) % agents.length}`,
    payload: i % 2 ? JSON.stringify({ i, text: 'héllo' }) : Buffer.from(`binary-${i}`),
  }))
  t.is(await sender.publish(batch), count)
  const { messages, batches } = await arrived
  t.is(messages.length, count)
  t.true(batches < count / 2, `delivered in batches, not one by one (${batches} batches)`)
  const first = messages.find((m) => m.agentId === 'agent-1' && m.seq === 1)!
  t.deepEqual(JSON.parse(first.payload.toString()), { i: 1, text: 'héllo' })
  t.is(first.exp, exp)
  t.is(first.kind, 'agent-chat')
  t.is(first.from, 'agent-2')
  t.truthy(first.msgId)
  t.true(first.ts > Date.now() - 60_000)
  // Every message carries its own ids (they travel as shared names and per-message indexes).
  const index = (m: BusMessage) => (m.payload.toString().startsWith('binary-') ? Number(m.payload.toString().slice(7)) : JSON.parse(m.payload.toString()).i)
  t.true(
    messages.every((m) => m.agentId === agents[index(m) % agents.length] && m.from === `agent-${(index(m) + 1) % agents.length}`),
    'each message has its own recipient and sender',
  )
  t.is(new Set(messages.map((m) => m.msgId)).size, count)
  // In order per recipient: seq 1, 2, 3, ... with no gaps.
  for (const agent of agents) {
    const seqs = messages.filter((m) => m.agentId === agent).map((m) => m.seq)
    t.deepEqual(
      seqs,
      seqs.map((_, i) => i + 1),
      agent,
    )
  }
  t.is(receiver.stats().gaps, 0)
  t.is(receiver.stats().duplicates, 0)
}

test('local transport: batches in, batches out, in order, no broker', (t) => roundTrip(t, { transport: 'local' }))
test('embedded broker (rumqttd), MQTT 5', (t) => roundTrip(t, {}))
test('embedded broker (rumqttd), MQTT 3.1.1', (t) => roundTrip(t, { protocol: 4 }))
test('Mosquitto, MQTT 5, per-agent subscriptions', (t) => roundTrip(t, { url: MOSQUITTO }))
// Mosquitto's defaults queue at most 1,000 QoS 1 messages per client beyond the 20 in flight, and
// under 3.1.1 nothing in the protocol tells a sender to slow down: past that, a receiver that
// falls behind (on a loaded CI machine, say) would lose messages to the broker. The bus's credits
// hold the sender to what the receiver has read, so all 5,000 arrive.
test('Mosquitto, MQTT 3.1.1, one experiment wildcard', (t) => roundTrip(t, { url: MOSQUITTO, protocol: 4, subscribe: 'experiment' }))

// A receiver that falls behind must not lose messages to Mosquitto's queue limit (1,000 beyond
// those in flight, by default). Under MQTT 5 the bus tells the broker it takes any number in
// flight (receive maximum 65,535), so what it has not read yet waits in the broker's send buffer
// and on the socket, not in the queue that drops. The receiver here reads nothing until all
// 3,000 were accepted from the sender, with an inbox of 100. The sender's credits hold it while
// the receiver reports nothing, and let it go on after a second each time (counted in
// creditReleased): even so, nothing is lost.
test('Mosquitto, MQTT 5: a receiver that reads nothing for a while loses nothing', async (t) => {
  const exp = `ava-${randomUUID().slice(0, 8)}`
  const count = 3000
  const receiver = await Bus.connect({ url: MOSQUITTO, exp, group: 'receivers', agents, inboxCapacity: 100 })
  const sender = await Bus.connect({ url: MOSQUITTO, exp, group: 'senders' })
  try {
    const batch = Array.from({ length: count }, (_, i) => ({ to: agents[i % agents.length], kind: 'agent-chat' as const, payload: `m${i}` }))
    t.is(await sender.publish(batch), count)
    t.true(sender.stats().creditReleased > 0)
    await new Promise((r) => setTimeout(r, 200))
    const { messages } = await collect(receiver, count)
    t.is(messages.length, count)
    t.is(receiver.stats().gaps, 0)
  } finally {
    await sender.close()
    await receiver.close()
  }
})

// What no later message reveals, the end mark a sender's close() sends does: here Mosquitto
// drops the end of a 5,000-message stream for a 3.1.1 receiver that reads nothing meanwhile (its
// defaults: 20 in flight, 1,000 queued) from a sender without credits, and the receiver's onGap
// hears of it. Under load the
// receiver may read a little during the sending, so a stretch in the middle can go too: that one
// the next message to arrive reveals.
test('Mosquitto, MQTT 3.1.1: messages lost at the end of a stream are reported once the sender closes', async (t) => {
  const exp = `ava-${randomUUID().slice(0, 8)}`
  const count = 5000
  const receiver = await Bus.connect({ url: MOSQUITTO, protocol: 4, exp, group: 'receivers', agents, inboxCapacity: 100 })
  // Without credits (flow control across the broker), so that Mosquitto drops.
  const sender = await Bus.connect({ url: MOSQUITTO, protocol: 4, exp, group: 'senders', endMarkIdleMs: 0, creditWindow: 0 })
  try {
    t.is(await sender.publish(Array.from({ length: count }, (_, i) => ({ to: 'agent-0', kind: 'agent-chat' as const, payload: `m${i}` }))), count)
    let received = 0
    let last = 0
    const gaps: BusGap[] = []
    const quiet = async () => {
      let seen = -1
      while (seen !== received + gaps.length) {
        seen = received + gaps.length
        await new Promise((r) => setTimeout(r, 400))
      }
    }
    receiver
      .onMessages((batch) => {
        received += batch.length
        last = batch[batch.length - 1].seq
      })
      .onGap((gap) => gaps.push(gap))
    await quiet()
    t.true(last < count, `the end of the stream arrived (${received} of ${count}): the test needs Mosquitto's default queue limit`)
    t.is(received + receiver.stats().missing, last, 'everything up to the last arrival is delivered or reported')
    const before = gaps.length
    await sender.close()
    await quiet()
    t.is(gaps.length, before + 1)
    t.deepEqual(gaps.at(-1), { agentId: 'agent-0', kind: 'agent-chat', from: gaps.at(-1)?.from, expected: last + 1, got: count + 1 })
    t.is(received + receiver.stats().missing, count, 'every message delivered or reported')
  } finally {
    await sender.close()
    await receiver.close()
  }
})

// A sender that stays open marks a stream once it has been quiet for endMarkIdleMs. The loss is
// certain here, whatever the load: the messages go out before the receiver subscribes. The mark
// comes 2 to 4 s after the messages, and the receiver must have subscribed by then. Under CI the
// other test files keep both cores busy (embedding, the sink's server): connecting once took long
// enough that the mark went out first, and no gap could ever come. So a run whose receiver was
// not ready within the idle time proves nothing and is run again (up to 5 times); a run whose
// receiver was ready waits up to 15 s for the gap, since timers fire late under that load too.
test('Mosquitto: messages lost at the end of a stream are reported once the stream has been quiet', async (t) => {
  const idle = 2000
  for (let attempt = 1; ; attempt++) {
    const exp = `ava-${randomUUID().slice(0, 8)}`
    const sender = await Bus.connect({ url: MOSQUITTO, exp, group: 'senders', endMarkIdleMs: idle })
    const sentAt = Date.now()
    t.is(await sender.publish(Array.from({ length: 10 }, (_, i) => ({ to: 'agent-0', kind: 'agent-chat' as const, payload: `m${i}` }))), 10)
    const receiver = await Bus.connect({ url: MOSQUITTO, exp, group: 'receivers', agents })
    try {
      const ready = Date.now() - sentAt
      if (ready >= idle && attempt < 5) {
        t.log(`attempt ${attempt}: the receiver took ${ready} ms to subscribe, the mark may have gone first; again`)
        continue
      }
      let received = 0
      const gaps: BusGap[] = []
      receiver.onMessages((batch) => (received += batch.length)).onGap((gap) => gaps.push(gap))
      while (gaps.length === 0 && Date.now() - sentAt < 15_000) await new Promise((r) => setTimeout(r, 50))
      t.is(received, 0)
      t.deepEqual(gaps, [{ agentId: 'agent-0', kind: 'agent-chat', from: gaps[0]?.from, expected: 1, got: 11 }])
      t.is(receiver.stats().missing, 10, 'every message delivered or reported')
      return
    } finally {
      await sender.close()
      await receiver.close()
    }
  }
})

// Payload bytes are reserved at 3 per UTF-16 unit, except for a batch that would reserve more
// than 64 MiB, which is measured string by string: both paths must carry every byte.
test('string payloads arrive byte for byte, in a small batch and in one too large to reserve 3x over', async (t) => {
  const exp = `ava-${randomUUID().slice(0, 8)}`
  const receiver = await Bus.connect({ transport: 'local', exp, group: 'receivers', agents })
  const sender = await Bus.connect({ transport: 'local', exp, group: 'senders' })
  try {
    for (const [count, size] of [
      [50, 1000],
      [300, 80_000],
    ]) {
      const payloads = Array.from({ length: count }, (_, i) => `${i}:${'é🙂x'.repeat(size / 4)}\ud800`)
      const arrived = collect(receiver, count)
      t.is(await sender.publish(payloads.map((payload, i) => ({ to: agents[i % agents.length], kind: 'agent-chat' as const, payload }))), count)
      const { messages } = await arrived
      const byIndex = new Map(messages.map((m) => [Number(m.payload.toString().split(':')[0]), m.payload]))
      t.true(
        payloads.every((p, i) => byIndex.get(i)?.equals(Buffer.from(p))),
        `${count} payloads of ${size} units`,
      )
    }
  } finally {
    await sender.close()
    await receiver.close()
  }
})

test('a foreign MQTT 5 sender whose ids hold newlines: delivered with spaces, later messages unshifted', async (t) => {
  const exp = `ava-${randomUUID().slice(0, 8)}`
  // The embedded broker: Mosquitto refuses control characters in properties as malformed UTF-8.
  const url = embeddedBrokerUrl(5)
  const receiver = await Bus.connect({ url, exp, group: 'r', agents: ['a', 'b'] })
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `${exp}-foreign` })
  try {
    const arrived = collect(receiver, 3)
    // The five-property envelope form, which foreign senders may use; ids are theirs to choose.
    // `seq` counts per (src, topic).
    const envelope = (msgId: string, seq: number, from: string) => ({
      properties: { userProperties: { msgId, seq: String(seq), from, src: 'foreign-src', ts: '1' } },
      qos: 1 as const,
    })
    await client.publishAsync(`exps/${exp}/agents/a/agent-chat`, 'one', envelope('id\none', 1, 'sender\none'))
    await client.publishAsync(`exps/${exp}/agents/b/agent-chat`, 'two', envelope('id-two', 1, 'sender-two'))
    await client.publishAsync(`exps/${exp}/agents/a/agent-chat`, 'three', envelope('id-three', 2, 'sender\none'))
    const { messages } = await arrived
    t.deepEqual(
      messages.map((m) => [m.agentId, m.from, m.msgId, m.payload.toString()]),
      [
        ['a', 'sender one', 'id one', 'one'],
        ['b', 'sender-two', 'id-two', 'two'],
        ['a', 'sender one', 'id-three', 'three'],
      ],
    )
  } finally {
    await client.endAsync()
    await receiver.close()
  }
})

test('a replayed msgId is delivered once', async (t) => {
  const exp = `ava-${randomUUID().slice(0, 8)}`
  const receiver = await Bus.connect({ url: MOSQUITTO, exp, group: 'r', agents: ['a'] })
  const sender = await Bus.connect({ url: MOSQUITTO, exp, group: 's' })
  const arrived = collect(receiver, 2)
  await sender.publish([{ to: 'a', kind: 'user-chat', payload: 'once', msgId: 'fixed-id' }])
  await sender.publish([{ to: 'a', kind: 'user-chat', payload: 'once again', msgId: 'fixed-id' }])
  await sender.publish([{ to: 'a', kind: 'user-survey', payload: 'next' }])
  const { messages } = await arrived
  t.deepEqual(
    messages.map((m) => [m.kind, m.payload.toString()]),
    [
      ['user-chat', 'once'],
      ['user-survey', 'next'],
    ],
  )
  t.is(receiver.stats().duplicates, 1)
  await sender.close()
  await receiver.close()
})

test('bad input and use after close are typed errors', async (t) => {
  const bus = await Bus.connect({ transport: 'local', exp: `ava-${randomUUID().slice(0, 8)}`, maxPayload: 8 })
  const code = async (p: Promise<unknown>) => ((await t.throwsAsync(p, { instanceOf: MyriadError })) as MyriadError).code
  t.is(await code(bus.publish([{ to: 'a/b', kind: 'agent-chat', payload: 'x' }])), 'ERR_INVALID_TOPIC')
  t.is(await code(bus.publish([{ to: 'a+', kind: 'agent-chat', payload: 'x' }])), 'ERR_INVALID_TOPIC')
  t.is(await code(bus.publish([{ to: 'a', kind: 'agent-chat', payload: 'x'.repeat(9) }])), 'ERR_PAYLOAD_TOO_LARGE')
  t.is(await code(bus.publish([{ to: 'a', kind: 'gossip' as 'agent-chat', payload: 'x' }])), 'ERR_INVALID_ARG')
  t.is(await code(bus.publish([{ to: 'a\nb', kind: 'agent-chat', payload: 'x' }])), 'ERR_INVALID_ARG')
  await bus.close()
  t.is(await code(bus.publish([{ to: 'a', kind: 'agent-chat', payload: 'x' }])), 'ERR_BUS_CLOSED')
  t.is(await code(Bus.connect({ exp: 'no/slash' })), 'ERR_INVALID_TOPIC')
  t.is(await code(Bus.connect({ exp: 'e', url: 'mqtt://127.0.0.1:1', connectTimeoutMs: 2000 })), 'ERR_BUS_CONNECT')
  t.is(await code(Bus.connect({ exp: 'e', url: 'mqtt://127.0.0.1:1883', qos: { 'agent-chat': 3 as 1 } })), 'ERR_INVALID_ARG')
})
