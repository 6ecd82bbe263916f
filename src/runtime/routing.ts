// `ctx.findHelpers` and `ctx.feedback`: the MAMA routing pipeline as one call. The calls of every
// turn that asks in the same pass of the event loop go out together: one embed and top-k over the
// specialties (`SemanticIndex.topKBatch`), the registry's records read on the JS thread, and one
// `Policy.decideBatch` for all of them. Feedback goes to the registry's trust ledger (a PML
// `feedback` message) and, as a reward for the decision that picked the helper, to the policy.
//
// What an ask gets must not depend on which other asks share its batch (that is timing: a turn
// that awaited something asks later), so a lockstep run's records depend only on the seed: the
// registry and the policy change only at the tick's end (feedback is applied then, in agent
// order, and the policy learns from it), the policy's choice is drawn with a uniform seeded by
// (asker, tick, ask), and so is the first of a specialty's agents to be offered.
import type { FindHelpersOptions, Helper, Outcome } from '../agents/index.js'
import { invalidArg } from '../errors/index.js'
import type { Embedder, Match, SemanticIndex } from '../matching/index.js'
import { MAX_CANDIDATES, type Policy, STATE_DIM, buildState } from '../policy/index.js'
import type { AgentInfo, Registry } from '../registry/index.js'
import { hash32, mix32 } from './random.js'

/** The agents of each specialty row: `slots[offsets[r] .. offsets[r + 1]]`. */
export interface RowAgents {
  offsets: Int32Array
  slots: Int32Array
}

interface Ask {
  asker: string
  /** Seeds the ask's draws: (seed, asker, tick, the asker's n-th ask in the tick). */
  draw: number
  query: string
  k: number
  available: boolean
  minTrust: number
  resolve: (helpers: Helper[]) => void
  reject: (error: unknown) => void
}

interface Decision {
  state: Float32Array
  action: number
  tick: number
}

/**
 * Query vectors kept, most recently used first: a population asks the same questions again and
 * again, and embedding one (milliseconds of CPU) costs far more than finding its matches.
 * 4,096 vectors of 384 floats are 6 MB.
 */
const QUERY_CACHE = 4096

/** Decisions kept for feedback this many ticks; later feedback still reaches the trust ledger. */
const DECISION_TTL_TICKS = 16

export interface RoutingStats {
  asks: number
  batches: number
  feedback: number
  updates: number
  /** Query texts embedded (the others were embedded before, and cached). */
  embedded: number
}

/** What a checkpoint keeps of the router between ticks (the rewards were learnt at the tick's end). */
export interface RouterSnapshot {
  decisions: [key: string, state: Float32Array, action: number, tick: number][]
  feedbackSeq: number
  queryVectors: [text: string, vector: Float32Array][]
  stats: RoutingStats
}

export class Router {
  private queue: Ask[] = []
  private scheduled = false
  /** The policy's decision per (asker, helper) pair, until feedback gives it a reward. */
  private readonly decisions = new Map<string, Decision>()
  private rewards: { state: Float32Array; action: number; reward: number }[] = []
  /** The tick's feedback, applied at its end. */
  private feedbacks: { asker: string; helper: string; outcome: Outcome; ts: number }[] = []
  /** Asks per (agent, tick) since the last tick's end: the index that seeds an ask's draws. */
  private asked = new Map<string, number>()
  private feedbackSeq = 0
  private tick = 0
  readonly stats: RoutingStats = { asks: 0, batches: 0, feedback: 0, updates: 0, embedded: 0 }
  private readonly queryVectors = new Map<string, Float32Array>()

  constructor(
    private readonly embedder: Embedder,
    private readonly index: SemanticIndex,
    private readonly registry: Registry,
    private readonly policy: Policy,
    private readonly exp: string,
    /** The registry's trust window, a feature of the policy's state. */
    private readonly window: number,
    private readonly ids: string[],
    /** The index's rows: distinct specialty texts (`s<row>`), each with its agents. */
    private readonly texts: string[],
    private readonly agentsOf: RowAgents,
    private readonly seed: number,
  ) {}

  snapshot(): RouterSnapshot {
    return {
      decisions: [...this.decisions].map(([key, d]) => [key, d.state, d.action, d.tick]),
      feedbackSeq: this.feedbackSeq,
      queryVectors: [...this.queryVectors],
      stats: { ...this.stats },
    }
  }

  restore(s: RouterSnapshot): void {
    for (const [key, state, action, tick] of s.decisions) this.decisions.set(key, { state, action, tick })
    this.feedbackSeq = s.feedbackSeq
    for (const [text, vector] of s.queryVectors) this.queryVectors.set(text, vector)
    Object.assign(this.stats, s.stats)
  }

  setTick(tick: number): void {
    this.tick = tick
  }

  findHelpers(asker: string, query: string, options: FindHelpersOptions = {}): Promise<Helper[]> {
    if (typeof query !== 'string' || query.length === 0) throw invalidArg('findHelpers needs a non-empty query text')
    const k = options.k ?? MAX_CANDIDATES
    if (!Number.isInteger(k) || k < 1) throw invalidArg(`findHelpers: k must be a positive integer, got ${String(k)}`)
    this.stats.asks++
    const key = `${asker}\n${this.tick}`
    const n = this.asked.get(key) ?? 0
    this.asked.set(key, n + 1)
    const draw = hash32(`${this.seed}\n${asker}\n${this.tick}\n${n}`)
    return new Promise<Helper[]>((resolve, reject) => {
      this.queue.push({ asker, draw, query, k, available: options.available ?? true, minTrust: options.minTrust ?? 0, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => void this.flush())
      }
    })
  }

  /** Checked now, applied at the tick's end (see the top of this file). */
  feedback(asker: string, helper: string, outcome: Outcome, ts: number): void {
    if (typeof helper !== 'string' || !outcome || typeof outcome.success !== 'boolean') throw invalidArg('feedback(helper, { success, latencyMs? })')
    if (!this.registry.get(helper)) throw invalidArg(`feedback for ${helper}: not an agent with a specialty (not in the registry)`)
    if (outcome.latencyMs !== undefined && !(Number.isFinite(outcome.latencyMs) && outcome.latencyMs >= 0)) {
      throw invalidArg(`feedback for ${helper}: latencyMs must be a non-negative number`)
    }
    this.stats.feedback++
    this.feedbacks.push({ asker, helper, outcome, ts })
  }

  /** The tick's feedback to the trust ledger, in asker order (each asker's in the order given), and its rewards. */
  private applyFeedback(): void {
    const feedbacks = this.feedbacks
    this.feedbacks = []
    // Array.prototype.sort is stable: an asker's feedback keeps its order.
    feedbacks.sort((a, b) => (a.asker < b.asker ? -1 : a.asker > b.asker ? 1 : 0))
    for (const { asker, helper, outcome, ts } of feedbacks) {
      const result = this.registry.handle({
        v: 1,
        type: 'feedback',
        msgId: `${this.exp}/feedback/${this.feedbackSeq++}`,
        from: asker,
        to: helper,
        ts,
        body: { success: outcome.success, ...(outcome.latencyMs === undefined ? {} : { latencyMs: outcome.latencyMs }) },
      })
      if (!result.ok) throw new Error(`the registry refused feedback for ${helper}: ${result.error?.reason ?? 'refused'}`)
      const key = `${asker}\n${helper}`
      const decision = this.decisions.get(key)
      if (decision) {
        this.decisions.delete(key)
        this.rewards.push({ state: decision.state, action: decision.action, reward: outcome.success ? 1 : 0 })
      }
    }
  }

  /** The policy's learning step for the tick's rewards; forgets decisions nobody gave feedback on. */
  async endTick(): Promise<void> {
    while (this.scheduled || this.queue.length > 0) await new Promise((r) => setImmediate(r))
    this.applyFeedback()
    this.asked = new Map()
    for (const [key, d] of this.decisions) if (d.tick < this.tick - DECISION_TTL_TICKS) this.decisions.delete(key)
    if (this.rewards.length === 0) return
    const n = this.rewards.length
    const states = new Float32Array(n * STATE_DIM)
    const actions = new Uint32Array(n)
    const rewards = new Float32Array(n)
    this.rewards.forEach((r, i) => {
      states.set(r.state, i * STATE_DIM)
      actions[i] = r.action
      rewards[i] = r.reward
    })
    this.rewards = []
    await this.policy.update({ states, actions, rewards })
    this.stats.updates++
  }

  private async flush(): Promise<void> {
    const batch = this.queue
    this.queue = []
    this.scheduled = false
    if (batch.length === 0) return
    this.stats.batches++
    try {
      const queries = [...new Set(batch.map((a) => a.query))]
      // Rows, not agents: a row may give several candidates; a few more in case its agents are busy.
      const kMax = Math.min(this.texts.length, Math.max(...batch.map((a) => a.k)) + 4)
      const hitsByQuery = this.index.size === 0 ? queries.map(() => [] as Match[]) : await this.index.topKBatch(await this.vectorsOf(queries), kMax)
      const hits = new Map(queries.map((q, i) => [q, hitsByQuery[i]]))
      const candidates = batch.map((ask) => this.candidates(ask, hits.get(ask.query) ?? []))
      const decided = candidates.map((c, i) => ({ c, i })).filter(({ c }) => c.length > 0)
      const states = new Float32Array(decided.length * STATE_DIM)
      const orders = decided.map(({ c, i }, row) => {
        const built = buildState(
          {
            queryTokens: Math.ceil(batch[i].query.length / 4),
            candidates: c.map(({ agent, score }) => ({
              similarity: score,
              trust: agent.trust,
              load: agent.load,
              capacity: agent.capacity,
              responseMs: agent.responseMs ?? undefined,
              windowOutcomes: agent.windowOutcomes,
              window: this.window,
              status: agent.status as 'idle' | 'busy' | 'offline',
            })),
          },
          states,
          row * STATE_DIM,
        )
        return built.order
      })
      // Greedy gives the probabilities (temperature 1); the choice is drawn here, per ask.
      const { probs } = decided.length > 0 ? await this.policy.decideBatch(states) : { probs: new Float32Array(0) }
      const actionCount = this.policy.actions
      const results: Helper[][] = batch.map(() => [])
      decided.forEach(({ c, i }, row) => {
        const order = orders[row]
        const action = Math.min(sample(probs, row * actionCount, actionCount, mix32(batch[i].draw ^ 0x5bd1e995) / 4294967296), order.length - 1)
        // buildState ranks the candidates by similarity, as `c` already is.
        const ranked = c.slice(0, order.length)
        const chosen = ranked[action]
        const state = states.slice(row * STATE_DIM, (row + 1) * STATE_DIM)
        this.decisions.set(`${batch[i].asker}\n${chosen.agent.id}`, { state, action, tick: this.tick })
        results[i] = [chosen, ...ranked.filter((_, j) => j !== action), ...c.slice(order.length)].map(({ agent, score }) => toHelper(agent, score))
      })
      batch.forEach((ask, i) => ask.resolve(results[i].slice(0, ask.k)))
    } catch (error) {
      for (const ask of batch) ask.reject(error)
    }
  }

  /** The queries' vectors, `n * dim` floats: from the cache, the others embedded in one call. */
  private async vectorsOf(queries: string[]): Promise<Float32Array> {
    const missing = queries.filter((q) => !this.queryVectors.has(q))
    if (missing.length > 0) {
      const embedded = await this.embedder.embed(missing)
      this.stats.embedded += missing.length
      const dim = embedded.length / missing.length
      missing.forEach((q, i) => {
        this.queryVectors.set(q, embedded.slice(i * dim, (i + 1) * dim))
      })
    }
    const dim = this.embedder.dim
    const out = new Float32Array(queries.length * dim)
    queries.forEach((q, i) => {
      const vector = this.queryVectors.get(q) as Float32Array
      // Most recently used last: the first key is the one to evict.
      this.queryVectors.delete(q)
      this.queryVectors.set(q, vector)
      out.set(vector, i * dim)
    })
    while (this.queryVectors.size > QUERY_CACHE) this.queryVectors.delete(this.queryVectors.keys().next().value as string)
    return out
  }

  /**
   * Up to k available agents for the ask, best specialty first: each row's agents from its cursor
   * on (a row's agents are equally similar; taking turns spreads the asks over them), leaving out
   * the asker, offline agents, agents at capacity (`available`) and trust below `minTrust`.
   */
  private candidates(ask: Ask, hits: Match[]): { agent: AgentInfo; score: number }[] {
    const out: { agent: AgentInfo; score: number }[] = []
    const { offsets, slots } = this.agentsOf
    for (const hit of hits) {
      const row = Number(hit.id.slice(1))
      const first = offsets[row]
      const count = offsets[row + 1] - first
      // Look at a bounded number of a crowded row's agents: the policy picks among five anyway.
      const looks = Math.min(count, 4 * ask.k)
      const start = mix32(ask.draw ^ mix32(row + 1)) % count
      for (let j = 0; j < looks && out.length < ask.k; j++) {
        const id = this.ids[slots[first + ((start + j) % count)]]
        if (id === ask.asker) continue
        const agent = this.registry.get(id)
        if (!agent || agent.status === 'offline') continue
        if (ask.available && agent.load >= agent.capacity) continue
        if (agent.trust < ask.minTrust) continue
        out.push({ agent, score: hit.score })
      }
      if (out.length >= ask.k) break
    }
    return out
  }
}

/** The action a uniform `u` in [0, 1) picks from the probabilities `probs[at .. at + n]`. */
function sample(probs: Float32Array, at: number, n: number, u: number): number {
  let acc = 0
  for (let a = 0; a < n; a++) {
    acc += probs[at + a]
    if (u < acc) return a
  }
  return n - 1
}

function toHelper(agent: AgentInfo, score: number): Helper {
  return {
    id: agent.id,
    score,
    trust: agent.trust,
    load: agent.load,
    capacity: agent.capacity,
    status: agent.status as Helper['status'],
    specialty: agent.specialty,
  }
}
