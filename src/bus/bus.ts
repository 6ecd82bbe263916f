import { Buffer } from 'node:buffer'

import type { z } from 'zod'

import { invalidArg, parseOptions } from '../errors/index.js'
import { type Binding, callNative, native, requireNative } from '../native/index.js'
import { type BusMessage, toMessages } from './inbound.js'
import { type BusOptions, BusOptionsSchema, MESSAGE_KINDS, type MessageKind } from './options.js'

export interface OutboundMessage {
  /** The recipient agent id. */
  to: string
  kind: MessageKind
  payload: string | Uint8Array
  /** The sending agent (default: the client id). */
  from?: string
  /** Default: unique per bus instance (`<src>-<n>`). Reusing one makes receivers drop the copy. */
  msgId?: string
}

/**
 * A jump in a sender's sequence to one agent: `got - expected` messages missing (so far). From an
 * end mark (sent by the sender's `close()`), `got` is one past its last message.
 */
export interface BusGap {
  agentId: string
  kind: MessageKind
  from: string
  expected: number
  got: number
}

export type BusStats = Binding.NativeBusStats

/**
 * One connection per agent group, shared by all its agents. `publish` takes many messages at once
 * and resolves when the broker accepted all of them under their QoS; inbound messages reach the
 * `onMessages` handler as one batch per event-loop turn.
 */
export class Bus {
  readonly exp: string
  private messageHandler?: (batch: BusMessage[]) => void
  private gapHandler?: (gap: BusGap) => void
  private waiting = false

  private readonly inner: Binding.NativeBus

  private constructor(inner: Binding.NativeBus, exp: string) {
    this.inner = requireNative(inner, native.NativeBus, 'Bus', 'Bus.connect(options)')
    this.exp = exp
    inner.onInbound(() => this.deliver())
  }

  static async connect(options: BusOptions): Promise<Bus> {
    const config = nativeConfig(parseOptions(BusOptionsSchema, options, 'Bus options'))
    return new Bus(await callNative(() => native.NativeBus.connect(config)), config.exp)
  }

  /** Sets the handler for inbound batches. Until one is set, messages wait (and, once the inbox is full, hold the network). */
  onMessages(handler: (batch: BusMessage[]) => void): this {
    this.messageHandler = handler
    if (this.waiting) queueMicrotask(() => this.deliver())
    return this
  }

  /** Sets the handler for sequence gaps (also counted in `stats().gaps`). */
  onGap(handler: (gap: BusGap) => void): this {
    this.gapHandler = handler
    return this
  }

  /** Sends a batch; resolves with its size once every message is accepted under its QoS. */
  publish(batch: readonly OutboundMessage[]): Promise<number> {
    const n = batch.length
    const kinds = new Uint8Array(n)
    const to = new Array<string>(n)
    let bytes = 0
    let froms: string[] | undefined
    let ids: string[] | undefined
    for (let i = 0; i < n; i++) {
      const m = batch[i]
      const kind = KIND_INDEX[m.kind]
      if (kind === undefined) return Promise.reject(invalidArg(`message ${i}: unknown kind ${JSON.stringify(m.kind)} (${MESSAGE_KINDS.join(', ')})`))
      if (typeof m.to !== 'string') return Promise.reject(invalidArg(`message ${i}: 'to' must be an agent id string`))
      kinds[i] = kind
      to[i] = m.to
      // UTF-8 takes at most 3 bytes per UTF-16 unit: room enough without a pass per string to
      // measure it (Buffer.byteLength was a visible share of the JS thread on the local transport).
      bytes += typeof m.payload === 'string' ? 3 * m.payload.length : m.payload.byteLength
      if (m.from !== undefined) (froms ??= new Array<string>(n).fill(''))[i] = m.from
      if (m.msgId !== undefined) (ids ??= new Array<string>(n).fill(''))[i] = m.msgId
    }
    // A batch too large to reserve three times over is measured exactly instead.
    if (bytes > ROOM_WITHOUT_MEASURING) bytes = batch.reduce((sum, { payload: p }) => sum + (typeof p === 'string' ? Buffer.byteLength(p) : p.byteLength), 0)
    const payloads = Buffer.allocUnsafe(bytes)
    const ends = new Uint32Array(n)
    let at = 0
    for (let i = 0; i < n; i++) {
      const p = batch[i].payload
      at += typeof p === 'string' ? payloads.write(p, at) : (payloads.set(p, at), p.byteLength)
      ends[i] = at
    }
    return callNative(() => this.inner.publish(to.join('\n'), kinds, payloads.subarray(0, at), ends, froms?.join('\n'), ids?.join('\n')))
  }

  /** Resolves when everything published so far is accepted by the broker. */
  drain(): Promise<void> {
    return callNative(() => this.inner.drain())
  }

  /**
   * Sends each stream's end mark (so receivers can report messages lost at its end), drains,
   * disconnects and delivers what is still queued; later publishes fail with ERR_BUS_CLOSED.
   */
  async close(): Promise<void> {
    try {
      await callNative(() => this.inner.close())
    } finally {
      this.deliver()
    }
  }

  stats(): BusStats {
    return this.inner.stats()
  }

  private deliver(): void {
    if (!this.messageHandler) {
      this.waiting = true
      return
    }
    this.waiting = false
    const cols = this.inner.take()
    if (cols.count > 0) this.messageHandler(toMessages(this.exp, cols))
    for (const g of cols.gaps) this.gapHandler?.({ ...g, kind: g.kind as MessageKind })
  }
}

/** The embedded broker's URL (started on first use) for MQTT 5 or 4 (3.1.1), for other clients to reach it. */
export function embeddedBrokerUrl(protocol: 5 | 4 = 5): string {
  return callNative(() => native.embeddedBrokerUrl(protocol))
}

/** Bytes a batch may reserve for its payloads without measuring each string (see `publish`). */
const ROOM_WITHOUT_MEASURING = 64 << 20

const KIND_INDEX: Record<string, number | undefined> = Object.fromEntries(MESSAGE_KINDS.map((k, i) => [k, i]))

function nativeConfig(o: z.output<typeof BusOptionsSchema>): Binding.NativeBusConfig {
  const tls = typeof o.tls === 'object' ? o.tls : undefined
  return {
    url: o.url,
    local: o.transport === 'local',
    exp: o.exp,
    clientId: o.clientId ?? `myriad-${o.exp}-${o.group}`,
    agents: o.agents,
    subscribe: o.subscribe,
    protocol: o.protocol,
    qos: [o.qos['agent-chat'], o.qos['user-chat'], o.qos['user-survey']],
    persistent: o.session === 'persistent',
    sessionExpiryS: o.sessionExpiryS,
    username: o.username,
    password: o.password,
    tls: o.tls === true || tls !== undefined,
    tlsCa: tls?.ca,
    tlsCert: tls?.cert,
    tlsKey: tls?.key,
    maxPayload: o.maxPayload,
    inflight: o.inflight,
    inboxCapacity: o.inboxCapacity,
    dedupeWindow: o.dedupeWindow,
    keepAliveS: o.keepAliveS,
    connectTimeoutMs: o.connectTimeoutMs,
    closeTimeoutMs: o.closeTimeoutMs,
    endMarkIdleMs: o.endMarkIdleMs,
    creditWindow: o.creditWindow,
  }
}
