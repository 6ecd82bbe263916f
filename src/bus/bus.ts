import { Buffer } from 'node:buffer'

import { callNative, invalidArg } from './errors.js'
import { native, type Binding } from './native.js'

/** The three kinds of message, each a topic level: `exps/<exp>/agents/<agentId>/<kind>`. */
export const MESSAGE_KINDS = ['agent-chat', 'user-chat', 'user-survey'] as const
export type MessageKind = (typeof MESSAGE_KINDS)[number]
export type QosLevel = 0 | 1 | 2

export interface BusOptions {
  /** `mqtt://host:port` or `mqtts://...`. Omitted: the embedded broker (rumqttd, in this process). */
  url?: string
  /** `'local'`: an in-process router, no broker at all (single-process runs, tests). Default `'mqtt'`. */
  transport?: 'mqtt' | 'local'
  /** Experiment id: the `<exp>` topic level. */
  exp: string
  /** The agent group this connection serves (one connection per group, shared by its agents). */
  group?: string
  /** MQTT client id; default `myriad-<exp>-<group>`. Must be unique per broker for persistent sessions. */
  clientId?: string
  /** The group's agents: messages addressed to them are delivered here. */
  agents?: string[]
  /** `'agents'`: one subscription per agent (default); `'experiment'`: one wildcard, demultiplexed here. */
  subscribe?: 'agents' | 'experiment'
  /** MQTT version: 5 (default; the envelope travels as user properties) or 4 (3.1.1; as a header). */
  protocol?: 5 | 4
  /** QoS per kind; defaults agent-chat 1, user-chat 1, user-survey 2. */
  qos?: Partial<Record<MessageKind, QosLevel>>
  /** `'persistent'` (default): the broker keeps subscriptions and queued messages across reconnects. */
  session?: 'persistent' | 'clean'
  sessionExpiryS?: number
  username?: string
  password?: string
  /** TLS (also implied by `mqtts://`): PEM paths of the broker's CA and, optionally, a client certificate. */
  tls?: boolean | { ca?: string; cert?: string; key?: string }
  /** Largest payload accepted by `publish`, bytes (default 256 KiB). */
  maxPayload?: number
  /** QoS 1/2 messages in flight before the broker acknowledges (default 64). */
  inflight?: number
  /** Inbound messages held for JavaScript before the network reads pause (default 65,536). */
  inboxCapacity?: number
  /** Recent msgIds remembered to drop duplicates (default 1,048,576). */
  dedupeWindow?: number
  keepAliveS?: number
  connectTimeoutMs?: number
  /** How long `close()` waits for outstanding acknowledgements (default 30 s). */
  closeTimeoutMs?: number
  /**
   * A stream (destination agent and kind) that got messages and then none for this long gets an
   * end mark, so receivers learn of messages lost at its end before this bus closes (default 5000;
   * 0: marks only at close). MQTT only.
   */
  endMarkIdleMs?: number
  /**
   * Flow control across the broker: QoS 1/2 messages this bus may have sent that no receiver has
   * reported reading yet. Keeps a slow receiver's backlog under a broker's queue limit (Mosquitto
   * drops past 1,000 by default). 0: credits off, this bus neither holds its sends nor reports what
   * it reads. Default 512, or 0 on the embedded broker (it drops nothing). MQTT only.
   */
  creditWindow?: number
}

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

/** A delivered message. A foreign client's message (no envelope) has empty from/msgId and seq/ts 0. */
export interface BusMessage {
  exp: string
  agentId: string
  kind: MessageKind
  from: string
  msgId: string
  /** Position in the sender's stream to this agent and kind (1, 2, 3, ...). */
  seq: number
  /** Milliseconds since the epoch at publish. */
  ts: number
  payload: Buffer
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

  private constructor(
    private readonly inner: Binding.NativeBus,
    exp: string,
  ) {
    this.exp = exp
    inner.onInbound(() => this.deliver())
  }

  static async connect(options: BusOptions): Promise<Bus> {
    const inner = await callNative(() => native.NativeBus.connect(nativeConfig(options)))
    return new Bus(inner, options.exp)
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
      // measure it (Buffer.byteLength was ~7% of the JS thread on the local transport).
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

function toMessages(exp: string, cols: Binding.InboundColumns): BusMessage[] {
  const n = cols.count
  const names = cols.names.split('\n')
  const ids = cols.msgIds.split('\n')
  // The numeric columns and the payloads share one buffer, laid out as `column_layout` in
  // crates/myriad-node/src/bus.rs says. A view must start at a multiple of its element size;
  // N-API buffers start at offset 0; any other start is copied to a fresh, unpooled buffer.
  const data = cols.data.byteOffset % 8 === 0 ? cols.data : Buffer.alloc(cols.data.length, cols.data)
  const ab = data.buffer
  const at = data.byteOffset
  const seqs = new Float64Array(ab, at, n)
  const ts = new Float64Array(ab, at + 8 * n, n)
  const agents = new Uint32Array(ab, at + 16 * n, n)
  const froms = new Uint32Array(ab, at + 20 * n, n)
  const ends = new Uint32Array(ab, at + 24 * n, n)
  const kinds = new Uint8Array(ab, at + 28 * n, n)
  const payloads = data.subarray(29 * n)
  const out = new Array<BusMessage>(n)
  let start = 0
  for (let i = 0; i < n; i++) {
    const end = ends[i]
    out[i] = {
      exp,
      agentId: names[agents[i]],
      kind: MESSAGE_KINDS[kinds[i]],
      from: names[froms[i]],
      msgId: ids[i],
      seq: seqs[i],
      ts: ts[i],
      payload: payloads.subarray(start, end),
    }
    start = end
  }
  return out
}

function nativeConfig(o: BusOptions): Binding.NativeBusConfig {
  if (!o || typeof o.exp !== 'string') throw invalidArg('Bus.connect needs { exp } (the experiment id)')
  const group = o.group ?? 'default'
  const qos = o.qos ?? {}
  const tls = typeof o.tls === 'object' ? o.tls : undefined
  return {
    url: o.url,
    local: o.transport === 'local',
    exp: o.exp,
    clientId: o.clientId ?? `myriad-${o.exp}-${group}`,
    agents: o.agents,
    subscribe: o.subscribe,
    protocol: o.protocol,
    qos: [qos['agent-chat'] ?? 1, qos['user-chat'] ?? 1, qos['user-survey'] ?? 2],
    persistent: o.session === undefined ? undefined : o.session === 'persistent',
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
