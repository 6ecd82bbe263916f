// Inbound messages cross from Rust in columns (see `take` in crates/myriad-node/src/bus.rs): the
// numeric columns and the payloads share one buffer, in the layout the binding reports.
import { Buffer } from 'node:buffer'

import { type Binding, native } from '../native/index.js'
import { MESSAGE_KINDS, type MessageKind } from './options.js'

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
 * Bytes per message before each column, and in all, from the binding's own layout: a column's
 * values for n messages start at `n * before[column]`, and the payloads at `n * total`.
 */
const LAYOUT = (() => {
  const before: Record<string, number> = {}
  let total = 0
  for (const { name, bytes } of native.inboundColumns()) {
    before[name] = total
    total += bytes
  }
  for (const name of ['seqs', 'ts', 'agents', 'froms', 'ends', 'kinds']) {
    if (!(name in before)) throw new Error(`the native binding's inbound layout has no '${name}' column: binding and TypeScript layer differ`)
  }
  return { before, total }
})()

export function toMessages(exp: string, cols: Binding.InboundColumns): BusMessage[] {
  const n = cols.count
  const names = cols.names.split('\n')
  const ids = cols.msgIds.split('\n')
  // A view must start at a multiple of its element size; N-API buffers start at offset 0; any
  // other start is copied to a fresh, unpooled buffer.
  const data = cols.data.byteOffset % 8 === 0 ? cols.data : Buffer.alloc(cols.data.length, cols.data)
  const ab = data.buffer
  const at = data.byteOffset
  const { before, total } = LAYOUT
  const seqs = new Float64Array(ab, at + n * before.seqs, n)
  const ts = new Float64Array(ab, at + n * before.ts, n)
  const agents = new Uint32Array(ab, at + n * before.agents, n)
  const froms = new Uint32Array(ab, at + n * before.froms, n)
  const ends = new Uint32Array(ab, at + n * before.ends, n)
  const kinds = new Uint8Array(ab, at + n * before.kinds, n)
  const payloads = data.subarray(n * total)
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
