// Messages between agents, over the experiment's `Bus` connections (one per group). A message sent
// in tick t is in its receiver's inbox at tick t + 1: sends gather in the sender's group outbox and
// go out in batches; the receiving group files each arrival under the tick it is for, and a tick
// does not start before everything sent in the one before it has arrived. Inboxes are ordered by
// sender and send order, so a run's records do not depend on network timing.
//
// This runs once per message on the JS thread, so it is kept lean: the payload is a short text
// header and the body's JSON (`<tick>|<send index>|<sender slot>|<receiver slot>|<own kind>|<json>`),
// not a JSON envelope that would cost an object and a second parse, and the slots in it spare the
// receiving side two lookups of fresh id strings in a map of the whole population (most of a
// message's cost at 100,000 agents); counters are arrays indexed by tick.
import type { Message } from '../agents/index.js'
import type { Bus, BusMessage, MessageKind, OutboundMessage } from '../bus/index.js'
import type { Population } from './population.js'
import { mix32 } from './random.js'
import type { Recorder } from './recording.js'

/** Messages per group outbox before it is sent without waiting for the tick's end. */
const OUTBOX_BATCH = 2048
/**
 * Batches being published at once, over all groups, before the scheduler holds turns back. Most
 * turns do not await their sends, so without this a million of them would queue a tick's
 * messages in the bus (and leave the arrivals untaken) before the event loop ever ran.
 */
const POSTS_IN_FLIGHT = 8

/** What `send` gives when the message is queued and the bus is not pushing back. */
export const SENT: Promise<void> = Promise.resolve()

/** Where the async clock files every arrival (see `anyTick`). */
export const ANY_TICK = -1

export interface DeliveryStats {
  sent: number
  /** Arrived in their receiver's inbox (those of the last tick wait there when the run ends). */
  delivered: number
  /** Sends to ids that do not exist (`ERR_UNKNOWN_AGENT`), and arrivals for agents parked since (`ERR_UNDELIVERED`). */
  failed: number
  /** Sent but never arrived within the delivery timeout. */
  lost: number
}

/**
 * A delivered message as the population holds it until its receiver's turn: slots and indexes, no
 * strings of its own (a message in flight per agent is most of a large population's heap). The
 * ids are read from the population and the message id is made again from its parts when asked.
 */
interface Parts {
  readonly pop: Population
  messageId(sender: number, tick: number, n: number): string
}

class Delivered implements Message {
  constructor(
    private readonly parts: Parts,
    /** The sender's slot (the population's size for a foreign client, whose id is kept in `origin`). */
    readonly sender: number,
    readonly receiver: number,
    readonly kind: string,
    readonly body: unknown,
    readonly tick: number,
    /** The sender's send index in its tick. */
    readonly order: number,
    readonly origin?: { from: string; msgId: string },
  ) {}

  get from(): string {
    return this.origin ? this.origin.from : this.parts.pop.ids[this.sender]
  }
  get to(): string {
    return this.parts.pop.ids[this.receiver]
  }
  get msgId(): string {
    return this.origin ? this.origin.msgId : this.parts.messageId(this.sender, this.tick, this.order)
  }
  /** What `JSON.stringify` gives: the message's fields, as a plain object would have them. */
  toJSON(): Message {
    return { from: this.from, to: this.to, kind: this.kind, body: this.body, tick: this.tick, msgId: this.msgId }
  }
}

/** A message waiting in an inbox, as a checkpoint holds it. */
export type PendingMessage = [
  slot: number,
  sender: number,
  kind: string,
  body: unknown,
  tick: number,
  order: number,
  origin: { from: string; msgId: string } | null,
]

/** What a checkpoint keeps of the mailbox at a tick's end: the next tick's inboxes and the counters. */
export interface MailboxSnapshot {
  pending: PendingMessage[]
  stats: DeliveryStats
  foreign: number
  closed: number
}

const byOrigin = (a: Delivered, b: Delivered) => a.sender - b.sender || a.order - b.order

/** Two hex digits per byte value: a UUID in 16 lookups rather than four toString(16) calls. */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
const hex8 = (w: number) => HEX[w >>> 24] + HEX[(w >>> 16) & 255] + HEX[(w >>> 8) & 255] + HEX[w & 255]
const hex4 = (w: number) => HEX[(w >>> 8) & 255] + HEX[w & 255]

export class Mailbox implements Parts {
  private readonly outboxes: OutboundMessage[][]
  private readonly sending: Promise<unknown>[] = []
  /**
   * Inboxes by slot, for two ticks at a time (t being taken, t + 1 being filed; the async clock uses
   * one): arrays indexed by slot look up faster than a map per tick, and hold nothing per agent
   * without mail but an empty slot.
   */
  private readonly boxes: (Delivered | Delivered[] | undefined)[][] = [[], []]
  /** The slots with mail per box set, in the order they got their first message. */
  private readonly receiving: number[][] = [[], []]
  /** The newest tick whose inboxes were taken and closed: what arrives for it or before is late. */
  private closed = -1
  /** The tick being run (or the last one run): a foreign message is for the one after it. */
  private current = -1
  private readonly sentFor: number[] = []
  private readonly receivedFor: number[] = []
  private waiter: { tick: number; resolve: () => void } | undefined
  private failure: unknown
  private posting = 0
  private unblock: (() => void) | undefined
  /** Arrivals without a Myriad header (a foreign MQTT client): numbered after every sender's. */
  private foreign = 0
  readonly stats: DeliveryStats = { sent: 0, delivered: 0, failed: 0, lost: 0 }

  constructor(
    readonly pop: Population,
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

  /** A deterministic UUID (version 4 layout) per (seed, sender, tick, send index). */
  messageId(sender: number, tick: number, n: number): string {
    const a = mix32(this.seed ^ mix32(sender + 0x9e3779b9))
    const b = mix32(a ^ mix32(tick + 1))
    const c = mix32(b ^ mix32(n + 0x7f4a7c15))
    const d = mix32(c ^ a)
    return `${hex8(a)}-${hex4(b >>> 16)}-${hex4(0x4000 | (b & 0x0fff))}-${hex4(0x8000 | ((c >>> 16) & 0x3fff))}-${hex4(c)}${hex8(d)}`
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
    const receiver = this.pop.slotOf(to)
    if (receiver === undefined) {
      this.stats.failed++
      this.deliveryError(ts, tick, from, `ERR_UNKNOWN_AGENT: ${from} sent a ${kind} message (${msgId}) to '${to}', which is not an agent of this experiment`)
      return SENT
    }
    const json = JSON.stringify(body) ?? 'null'
    this.stats.sent++
    this.sentFor[tick] = (this.sentFor[tick] ?? 0) + 1
    // The record gets the body as sent: an object is copied, since the agent may change it later in its turn.
    const recorded = typeof body === 'object' && body !== null ? JSON.parse(json) : (body ?? null)
    this.recorder.add('messages', { exp_id: this.recorder.exp, msg_id: msgId, src: from, dst: to, kind, ts, tick, payload: recorded })
    const group = this.groupOf(sender)
    const outbox = this.outboxes[group]
    outbox.push({ to, kind: busKind, payload: `${tick}|${n}|${sender}|${receiver}|${ownKind ?? ''}|${json}`, from, msgId })
    return outbox.length >= OUTBOX_BATCH ? this.post(group).then(() => undefined) : SENT
  }

  /**
   * Publishes `body` from `slot` straight to `to`, an id outside the population (an outside
   * client's reply topic), on `user-chat`. A refusal is an `errors` row, not a failed turn.
   */
  reply(slot: number, to: string, body: unknown, msgId: string, tick: number, ts: number): void {
    const from = this.pop.ids[slot]
    const sent = this.buses[this.groupOf(slot)].publish([{ to, kind: 'user-chat', payload: JSON.stringify(body), from, msgId }]).then(
      () => undefined,
      (error: unknown) => {
        const code = (error as { code?: string }).code ?? 'ERR_BUS_REFUSED'
        this.deliveryError(ts, tick, from, `${code}: ${from}'s interview reply to ${to} was not published: ${(error as Error).message}`)
      },
    )
    this.sending.push(sent)
  }

  /** A promise while too many batches are being published: the scheduler waits on it before starting turns. */
  congested(): Promise<void> | undefined {
    if (this.posting < POSTS_IN_FLIGHT) return undefined
    return new Promise((resolve) => {
      this.unblock = resolve
    })
  }

  /**
   * The inboxes of `tick` (the next one: a lockstep checkpoint is taken between ticks, everything
   * sent before it delivered) and the counters.
   */
  snapshot(tick: number): MailboxSnapshot {
    const set = this.set(tick)
    const pending: PendingMessage[] = []
    for (const slot of this.receiving[set]) {
      const filed = this.boxes[set][slot]
      if (!filed) continue
      for (const m of Array.isArray(filed) ? filed : [filed]) pending.push([slot, m.sender, m.kind, m.body, m.tick, m.order, m.origin ?? null])
    }
    return { pending, stats: { ...this.stats }, foreign: this.foreign, closed: this.closed }
  }

  /** Files a snapshot's messages for `tick`, in the order they were filed, and takes its counters. */
  restore(tick: number, s: MailboxSnapshot): void {
    for (const [slot, sender, kind, body, sent, order, origin] of s.pending) {
      this.fileAt(tick, slot, new Delivered(this, sender, slot, kind, body, sent, order, origin ?? undefined))
    }
    Object.assign(this.stats, s.stats)
    this.foreign = s.foreign
    this.closed = s.closed
  }

  /** A lockstep tick starts. */
  begin(tick: number): void {
    this.current = tick
  }

  /** Sends every outbox and waits until the broker accepted all of it. */
  async flush(): Promise<void> {
    this.buses.forEach((_, g) => this.post(g))
    await Promise.all(this.sending.splice(0))
    if (this.failure !== undefined) throw this.failure
  }

  /** Resolves once everything sent so far has arrived, or after `timeoutMs` (the rest counted as lost). */
  async allDelivered(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs
    for (let tick = 0; tick < this.sentFor.length; tick++) if (this.sentFor[tick]) await this.delivered(tick, Math.max(0, deadline - performance.now()))
  }

  /**
   * Resolves once everything sent in `tick` has arrived, or after `timeoutMs`: what is still
   * missing then is counted as lost (and stays counted even if it arrives later).
   */
  async delivered(tick: number, timeoutMs: number): Promise<void> {
    const want = this.sentFor[tick] ?? 0
    if ((this.receivedFor[tick] ?? 0) < want) {
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
    const missing = want - (this.receivedFor[tick] ?? 0)
    if (missing > 0) this.stats.lost += missing
    this.sentFor[tick] = 0
    this.receivedFor[tick] = 0
  }

  /** The inbox of `slot` for `tick` (taken: a second call gives nothing). */
  take(tick: number, slot: number): readonly Message[] {
    const boxes = this.boxes[this.set(tick)]
    const filed = boxes[slot]
    if (!filed) return NO_MESSAGES
    boxes[slot] = undefined
    if (!Array.isArray(filed)) return [filed]
    return filed.sort(byOrigin)
  }

  /** The slots with messages waiting for `tick`, in slot order. */
  receivers(tick: number): Int32Array {
    const receiving = this.receiving[this.set(tick)]
    return receiving.length > 0 ? Int32Array.from(receiving).sort() : NO_RECEIVERS
  }

  /**
   * What was filed for `tick` and not taken: messages to agents parked since they were sent. Each
   * is a failed delivery, recorded in `errors` and counted.
   */
  discard(tick: number, ts: number, why = 'which is parked'): number {
    const set = this.set(tick)
    const boxes = this.boxes[set]
    const receiving = this.receiving[set]
    this.receiving[set] = []
    this.closed = Math.max(this.closed, tick)
    let n = 0
    for (const slot of receiving) {
      const filed = boxes[slot]
      if (!filed) continue
      boxes[slot] = undefined
      for (const message of Array.isArray(filed) ? filed : [filed]) {
        n++
        this.deliveryError(
          ts,
          tick,
          message.from,
          `ERR_UNDELIVERED: ${message.from}'s ${message.kind} message (${message.msgId}) reached ${this.pop.ids[slot]}, ${why}`,
        )
      }
    }
    this.stats.failed += n
    this.stats.delivered -= n
    return n
  }

  /** A message that did not reach its receiver: an `errors` row (component `delivery`). */
  private deliveryError(ts: number, tick: number, agent: string, detail: string): void {
    this.recorder.add('errors', { exp_id: this.recorder.exp, ts, tick, agent_id: agent, comp: 'delivery', detail })
  }

  private post(group: number): Promise<unknown> {
    const batch = this.outboxes[group]
    if (batch.length === 0) return Promise.resolve()
    this.outboxes[group] = []
    this.posting++
    const sent = this.buses[group].publish(batch).then(
      () => this.posted(),
      (error: unknown) => {
        this.failure ??= error
        this.posted()
      },
    )
    this.sending.push(sent)
    return sent
  }

  /** Which of the two box sets holds `tick`'s inboxes. */
  private set(tick: number): number {
    return this.anyTick ? 0 : tick & 1
  }

  private posted(): void {
    this.posting--
    if (this.posting < POSTS_IN_FLIGHT && this.unblock) {
      const resolve = this.unblock
      this.unblock = undefined
      resolve()
    }
  }

  private arrive(batch: BusMessage[]): void {
    const pop = this.pop
    const ids = pop.ids
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]
      const text = m.payload.toString('utf8')
      // The header's five fields end at the fifth '|'; a foreign client's payload has no header.
      const c0 = text.indexOf('|')
      const c1 = c0 < 0 ? -1 : text.indexOf('|', c0 + 1)
      const c2 = c1 < 0 ? -1 : text.indexOf('|', c1 + 1)
      const c3 = c2 < 0 ? -1 : text.indexOf('|', c2 + 1)
      const c4 = c3 < 0 ? -1 : text.indexOf('|', c3 + 1)
      let sent: number
      let order: number
      let kind: string
      let body: unknown
      let sender: number
      let slot: number | undefined
      const foreign = c4 < 0
      if (!foreign) {
        sent = +text.slice(0, c0)
        order = +text.slice(c0 + 1, c1)
        sender = +text.slice(c1 + 1, c2)
        slot = +text.slice(c2 + 1, c3)
        if (ids[slot] !== m.agentId) slot = pop.slotOf(m.agentId)
        kind = c4 > c3 + 1 ? text.slice(c3 + 1, c4) : m.kind
        body = JSON.parse(text.slice(c4 + 1))
      } else {
        // A foreign client's message: for the next turn, after every agent's, its payload as JSON
        // when it is JSON and as text otherwise.
        slot = pop.slotOf(m.agentId)
        sent = this.current
        order = this.foreign++
        sender = this.pop.size
        kind = m.kind
        try {
          body = JSON.parse(text)
        } catch {
          body = text
        }
      }
      if (slot === undefined) continue
      const tick = this.anyTick ? ANY_TICK : sent + 1
      const message = new Delivered(this, sender, slot, kind, body, sent, order, foreign ? { from: m.from, msgId: m.msgId } : undefined)
      if (!foreign) {
        const received = (this.receivedFor[sent] ?? 0) + 1
        this.receivedFor[sent] = received
        if (this.waiter && this.waiter.tick === sent && received >= (this.sentFor[sent] ?? 0)) this.waiter.resolve()
      }
      if (!this.anyTick && tick <= this.closed) {
        // Past its tick's delivery timeout (counted lost then): now it is a failed delivery, recorded.
        this.stats.lost--
        this.stats.failed++
        this.deliveryError(
          Date.now(),
          tick,
          m.from,
          `ERR_UNDELIVERED: ${m.from}'s ${kind} message (${m.msgId}) to ${m.agentId} arrived after tick ${tick} had started`,
        )
        continue
      }
      this.fileAt(tick, slot, message)
      this.stats.delivered++
    }
  }

  /**
   * Files a message from the experimenter (a survey, an interview, a broadcast) straight into
   * `slot`'s inbox for `tick`, after every agent's message to it: it does not travel the bus, and
   * is not counted among the agents' messages.
   */
  file(tick: number, slot: number, kind: string, body: unknown, origin: { from: string; msgId: string }): void {
    this.fileAt(this.anyTick ? ANY_TICK : tick, slot, new Delivered(this, this.pop.size, slot, kind, body, tick - 1, this.foreign++, origin))
  }

  private fileAt(tick: number, slot: number, message: Delivered): void {
    const set = this.set(tick)
    const boxes = this.boxes[set]
    const filed = boxes[slot]
    if (Array.isArray(filed)) filed.push(message)
    else if (filed) boxes[slot] = [filed, message]
    else {
      boxes[slot] = message
      // The async clock asks no one for receivers: it would only grow.
      if (!this.anyTick) this.receiving[set].push(slot)
    }
  }
}

const NO_MESSAGES: readonly Message[] = Object.freeze([])
const NO_RECEIVERS = new Int32Array(0)
