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

/** Error codes a message can be rejected with. */
export type PmlErrorCode =
  | 'ERR_PML_JSON'
  | 'ERR_PML_VERSION'
  | 'ERR_PML_TYPE'
  | 'ERR_PML_FIELD'
  | 'ERR_PML_TOO_LARGE'
  | 'ERR_UNKNOWN_AGENT'

export interface ProcessResult {
  /** Applied now, or applied before (`duplicate`). */
  ok: boolean
  duplicate: boolean
  type?: PmlType
  agentId?: string
  error?: { code: PmlErrorCode; reason: string }
}
