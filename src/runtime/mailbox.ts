// Messages between agents, over the experiment's `Bus` connections (one per group). A message sent
// in tick t is in its receiver's inbox at tick t + 1: sends gather in the sender's group outbox and
// go out in batches; the receiving group files each arrival under the tick it is for, and a tick
// does not start before everything sent in the one before it has arrived. Inboxes are ordered by
// sender and send order, so a run's records do not depend on network timing.
import type { Message } from '../agents/index.js'
import type { Bus, BusMessage, MessageKind, OutboundMessage } from '../bus/index.js'
import { MyriadError } from '../errors/index.js'
import type { Population } from './population.js'
import { mix32 } from './random.js'
import type { Recorder } from './recording.js'

/** What travels as a message's payload beside the body: the tick, the sender's send index, an own kind. */
interface Envelope {
  t: number
  s: number
  k?: string
  b: unknown
}

/** Messages per group outbox before it is sent without waiting for the tick's end. */
const OUTBOX_BATCH = 2048

interface Filed {
  message: Message
  sender: number
  order: number
}

export interface DeliveryStats {
  sent: number
  delivered: number
  /** Sends to ids that do not exist (`ERR_UNKNOWN_AGENT`). */
  failed: number
  /** Sent but never arrived within the delivery timeout. */
  lost: number
}

const hex = (w: number) => w.toString(16).padStart(8, '0')

export class Mailbox {
  private readonly outboxes: OutboundMessage[][]
  private readonly sending: Promise<unknown>[] = []
  private readonly inboxes = new Map<number, Map<number, Filed[]>>()
  private readonly sentFor = new Map<number, number>()
  private readonly receivedFor = new Map<number, number>()
  private waiter: { tick: number; resolve: () => void } | undefined
  private failure: unknown
  readonly stats: DeliveryStats = { sent: 0, delivered: 0, failed: 0, lost: 0 }

  constructor(
    private readonly pop: Population,
    private readonly buses: Bus[],
    private readonly groupOf: (slot: number) => number,
    private readonly recorder: Recorder,
    private readonly seed: number,
    /** The async clock: an arrival is for the receiver's next turn, whatever tick it was sent in. */
    private readonly anyTick = false,
  ) {
    this.outboxes = buses.map(() => [])
    for (const bus of buses) bus.onMessages((batch) => this.arrive(batch))
  }

  /** A deterministic UUID per (seed, sender, tick, send index). */
  messageId(sender: number, tick: number, n: number): string {
    const a = mix32(this.seed ^ mix32(sender + 0x9e3779b9))
    const b = mix32(a ^ mix32(tick + 1))
    const c = mix32(b ^ mix32(n + 0x7f4a7c15))
    const d = mix32(c ^ a)
    const w = [a, b, c, d].map(hex).join('')
    return `${w.slice(0, 8)}-${w.slice(8, 12)}-4${w.slice(13, 16)}-${((Number.parseInt(w[16], 16) & 3) | 8).toString(16)}${w.slice(17, 20)}-${w.slice(20, 32)}`
  }

  /**
   * Queues one message from slot `sender`; resolves when its batch is accepted if it filled the
   * outbox (the bus pushing back), else at once. An unknown recipient is a failed delivery,
   * recorded, counted and reported: never sent, never silently dropped.
   */
  send(sender: number, to: string, busKind: MessageKind, ownKind: string | undefined, body: unknown, tick: number, ts: number, n: number): Promise<void> {
    const from = this.pop.ids[sender]
    const msgId = this.messageId(sender, tick, n)
    const kind = ownKind ?? busKind
    if (!this.pop.index.has(to)) {
      this.stats.failed++
      this.recorder.add('errors', {
        exp_id: this.recorder.exp,
        ts,
        tick,
        agent_id: from,
        comp: 'delivery',
        detail: `ERR_UNKNOWN_AGENT: ${from} sent a ${kind} message (${msgId}) to '${to}', which is not an agent of this experiment`,
      })
      return Promise.resolve()
    }
    const envelope: Envelope = ownKind === undefined ? { t: tick, s: n, b: body } : { t: tick, s: n, k: ownKind, b: body }
    const payload = JSON.stringify(envelope)
    this.stats.sent++
    this.sentFor.set(tick, (this.sentFor.get(tick) ?? 0) + 1)
    this.recorder.add('messages', { exp_id: this.recorder.exp, msg_id: msgId, src: from, dst: to, kind, ts, tick, payload: body ?? null })
    const group = this.groupOf(sender)
    const outbox = this.outboxes[group]
    outbox.push({ to, kind: busKind, payload, from, msgId })
    return outbox.length >= OUTBOX_BATCH ? this.post(group).then(() => undefined) : Promise.resolve()
  }

  /** Sends every outbox and waits until the broker accepted all of it. */
  async flush(): Promise<void> {
    this.buses.forEach((_, g) => this.post(g))
    await Promise.all(this.sending.splice(0))
    if (this.failure !== undefined) throw this.failure
  }

  /** Resolves once everything sent so far has arrived, or after `timeoutMs` (the rest counted as lost). */
  async allDelivered(timeoutMs: number): Promise<void> {
    const ticks = [...this.sentFor.keys()]
    const deadline = performance.now() + timeoutMs
    for (const tick of ticks) await this.delivered(tick, Math.max(0, deadline - performance.now()))
  }

  /**
   * Resolves once everything sent in `tick` has arrived, or after `timeoutMs`: what is still
   * missing then is counted as lost (and stays counted even if it arrives later).
   */
  async delivered(tick: number, timeoutMs: number): Promise<void> {
    const want = this.sentFor.get(tick) ?? 0
    if ((this.receivedFor.get(tick) ?? 0) < want) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        new Promise<void>((resolve) => {
          this.waiter = { tick, resolve }
        }),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs)
        }),
      ])
      clearTimeout(timer)
      this.waiter = undefined
    }
    const missing = want - (this.receivedFor.get(tick) ?? 0)
    if (missing > 0) this.stats.lost += missing
    this.sentFor.delete(tick)
    this.receivedFor.delete(tick)
  }

  /** The inbox of `slot` for `tick` (taken: a second call gives nothing). */
  take(tick: number, slot: number): Message[] {
    const forTick = this.inboxes.get(tick)
    const filed = forTick?.get(slot)
    if (!filed) return NO_MESSAGES
    forTick?.delete(slot)
    if (filed.length > 1) filed.sort((a, b) => a.sender - b.sender || a.order - b.order)
    return filed.map((f) => f.message)
  }

  /** The slots with messages waiting for `tick`, in slot order. */
  receivers(tick: number): number[] {
    const forTick = this.inboxes.get(tick)
    return forTick ? [...forTick.keys()].sort((a, b) => a - b) : []
  }

  /**
   * What was filed for `tick` and not taken: messages to agents parked since they were sent. Each
   * is a failed delivery, recorded in `errors` and counted, never dropped without a trace.
   */
  discard(tick: number, ts: number, why = 'which is parked'): number {
    const forTick = this.inboxes.get(tick)
    this.inboxes.delete(tick)
    let n = 0
    for (const [slot, filed] of forTick ?? []) {
      for (const { message } of filed) {
        n++
        this.recorder.add('errors', {
          exp_id: this.recorder.exp,
          ts,
          tick,
          agent_id: message.from,
          comp: 'delivery',
          detail: `ERR_UNDELIVERED: ${message.from}'s ${message.kind} message (${message.msgId}) reached ${this.pop.ids[slot]}, ${why}`,
        })
      }
    }
    this.stats.failed += n
    this.stats.delivered -= n
    return n
  }

  private post(group: number): Promise<unknown> {
    const batch = this.outboxes[group]
    if (batch.length === 0) return Promise.resolve()
    this.outboxes[group] = []
    const sent = this.buses[group].publish(batch).catch((error: unknown) => {
      this.failure ??= error
    })
    this.sending.push(sent)
    return sent
  }

  private arrive(batch: BusMessage[]): void {
    for (const m of batch) {
      const slot = this.pop.index.get(m.agentId)
      let envelope: Envelope
      try {
        envelope = JSON.parse(m.payload.toString('utf8')) as Envelope
      } catch {
        this.failure ??= new MyriadError('ERR_INTERNAL', `a message to ${m.agentId} from ${m.from} is not a Myriad envelope`)
        continue
      }
      if (slot === undefined) continue
      const sender = this.pop.index.get(m.from) ?? -1
      const tick = this.anyTick ? ANY_TICK : envelope.t + 1
      let forTick = this.inboxes.get(tick)
      if (!forTick) {
        forTick = new Map()
        this.inboxes.set(tick, forTick)
      }
      const message: Message = { from: m.from, to: m.agentId, kind: envelope.k ?? m.kind, body: envelope.b, tick: envelope.t, msgId: m.msgId }
      const filed = forTick.get(slot)
      const entry = { message, sender, order: envelope.s }
      if (filed) filed.push(entry)
      else forTick.set(slot, [entry])
      this.stats.delivered++
      const received = (this.receivedFor.get(envelope.t) ?? 0) + 1
      this.receivedFor.set(envelope.t, received)
      if (this.waiter && this.waiter.tick === envelope.t && received >= (this.sentFor.get(envelope.t) ?? 0)) this.waiter.resolve()
    }
  }
}

/** Where the async clock files every arrival (see `anyTick`). */
export const ANY_TICK = -1

const NO_MESSAGES: Message[] = Object.freeze([]) as unknown as Message[]
