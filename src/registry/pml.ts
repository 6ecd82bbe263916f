import type { PmlErrorCode } from '../errors/index.js'

/**
 * PML v1, the Pulse Message Language: the JSON messages agents and the runtime exchange with the
 * registry. Every message has `v`, `type`, `msgId`, `from`, `to?`, `ts` (ms since the epoch) and
 * `body`; the README documents each type.
 */
export const PML_VERSION = 1

export type PmlStatus = 'idle' | 'busy' | 'offline'

interface Envelope<T extends string, B> {
  v: 1
  type: T
  /** Unique per message (a UUID): a message whose msgId was already applied changes nothing. */
  msgId: string
  from: string
  to?: string
  ts: number
  body: B
}

export type PmlMessage =
  | Envelope<'register', { specialty: string; capacity?: number }>
  | Envelope<'heartbeat', { load?: number; status?: PmlStatus }>
  | Envelope<'request', { taskId: string; query: string }>
  | Envelope<'offer', { taskId: string }>
  | Envelope<'result', { taskId: string; success: boolean; latencyMs?: number }>
  | Envelope<'feedback', { taskId?: string; success: boolean; latencyMs?: number }>
  | Envelope<'deregister', Record<string, never>>

export type PmlType = PmlMessage['type']

export interface ProcessResult {
  /** Applied now, or applied before (`duplicate`). */
  readonly ok: boolean
  readonly duplicate: boolean
  /** The message's type, when it parsed that far. */
  readonly type?: PmlType
  readonly error?: { code: PmlErrorCode; reason: string }
}

export const PML_TYPES: readonly PmlType[] = ['register', 'heartbeat', 'request', 'offer', 'result', 'feedback', 'deregister']

// Applied/duplicate results carry no per-message data, so they are shared frozen objects: decoding
// a batch of 10^5 results allocates nothing but the rejections.
const SHARED = PML_TYPES.map((type) => [Object.freeze({ ok: true, duplicate: false, type }), Object.freeze({ ok: true, duplicate: true, type })])

/** Decodes the binding's outcome code: `kindIndex << 2 | status` (0 applied, 1 duplicate, 2 rejected). */
export function decodeOutcome(code: number, rejection?: { code: string; reason: string }): ProcessResult {
  const kind = code >>> 2
  const status = code & 3
  if (status < 2 && kind < PML_TYPES.length) return SHARED[kind][status]
  return {
    ok: false,
    duplicate: false,
    ...(kind < PML_TYPES.length ? { type: PML_TYPES[kind] } : {}),
    error: { code: (rejection?.code ?? 'ERR_PML_JSON') as PmlErrorCode, reason: rejection?.reason ?? 'rejected' },
  }
}
