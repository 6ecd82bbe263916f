/**
 * The policy's 50-dim state: what the router knows when it picks one of (up to) five candidates.
 *
 * | index | feature |
 * |---|---|
 * | 0 | query length: tokens / 256, at most 1 |
 * | 1 | urgency, 0..1 (the caller's) |
 * | 2, 3, 4 | best, mean and standard deviation of the candidates' similarities |
 * | 5 | best similarity minus the second best |
 * | 6 | candidates present / 5 |
 * | 7 | constant 1 |
 * | 8 + 8k ... 15 + 8k | candidate k (best similarity first): similarity, trust, load / capacity (at most 2, halved), response time (min(ms / 1000, 5) / 5, 0 if unknown), evidence (outcomes in the trust window / window), idle, busy, present |
 * | 48 | system utilisation: busy agents / agents, 0..1 |
 * | 49 | queue pressure: pending requests / capacity, at most 1 |
 *
 * Absent candidate slots are all zeros (their `present` flag included).
 */
export const STATE_DIM = 50
export const MAX_CANDIDATES = 5

export interface CandidateFeatures {
  /** Cosine similarity of the candidate's specialty to the query. */
  similarity: number
  /** The registry's trust, 0..1. */
  trust: number
  load: number
  capacity: number
  responseMs?: number
  /** Outcomes in the trust window, and the window's size. */
  windowOutcomes?: number
  window?: number
  status?: 'idle' | 'busy' | 'offline'
}

export interface StateInput {
  queryTokens?: number
  urgency?: number
  /** At most five, in any order: they are ranked by similarity here. */
  candidates: CandidateFeatures[]
  utilisation?: number
  queuePressure?: number
}

const clamp = (v: number, lo: number, hi: number) => (Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : lo)

/**
 * Writes the state for `input` into `out` at `offset` (default: a new Float32Array(50)).
 * Returns the candidates in the order the policy sees them, so its action maps back to one.
 */
export function buildState(input: StateInput, out = new Float32Array(STATE_DIM), offset = 0): { state: Float32Array; order: CandidateFeatures[] } {
  const order = [...input.candidates].sort((a, b) => b.similarity - a.similarity).slice(0, MAX_CANDIDATES)
  const s = out.subarray(offset, offset + STATE_DIM)
  s.fill(0)
  const sims = order.map((c) => clamp(c.similarity, -1, 1))
  const mean = sims.length ? sims.reduce((a, b) => a + b, 0) / sims.length : 0
  const std = sims.length ? Math.sqrt(sims.reduce((a, b) => a + (b - mean) ** 2, 0) / sims.length) : 0
  s[0] = clamp((input.queryTokens ?? 0) / 256, 0, 1)
  s[1] = clamp(input.urgency ?? 0, 0, 1)
  s[2] = sims[0] ?? 0
  s[3] = mean
  s[4] = std
  s[5] = sims.length > 1 ? sims[0] - sims[1] : 0
  s[6] = order.length / MAX_CANDIDATES
  s[7] = 1
  order.forEach((c, k) => {
    const b = 8 + 8 * k
    s[b] = sims[k]
    s[b + 1] = clamp(c.trust, 0, 1)
    s[b + 2] = clamp(c.capacity > 0 ? c.load / c.capacity : 2, 0, 2) / 2
    s[b + 3] = c.responseMs === undefined ? 0 : clamp(c.responseMs / 1000, 0, 5) / 5
    s[b + 4] = c.window ? clamp((c.windowOutcomes ?? 0) / c.window, 0, 1) : 0
    s[b + 5] = c.status === 'idle' ? 1 : 0
    s[b + 6] = c.status === 'busy' ? 1 : 0
    s[b + 7] = 1
  })
  s[48] = clamp(input.utilisation ?? 0, 0, 1)
  s[49] = clamp(input.queuePressure ?? 0, 0, 1)
  return { state: s, order }
}
