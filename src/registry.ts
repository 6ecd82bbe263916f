import { callNative, invalidArg } from './errors.js'
import { native, type Binding } from './native.js'
import type { PmlMessage, PmlStatus, ProcessResult } from './pml.js'
import type { Match, SemanticIndex } from './semantic-index.js'

export interface RegistryOptions {
  /** Outcomes per agent that trust is computed from (default 50). */
  window?: number
  /** Recent msgIds remembered to drop replays (default 1,000,000). */
  dedupeCapacity?: number
  /** Keeps agents' specialties searchable (`findBySpecialty`); needs an embedder on the index. */
  index?: SemanticIndex
}

export type AgentInfo = Binding.AgentInfo

const encode = (m: string | PmlMessage) => (typeof m === 'string' ? m : JSON.stringify(m))

/**
 * Agents, their specialties, load and trust, kept by Rust and driven by PML messages. Each message
 * gets its own result: a bad one is rejected with a code and a reason, the rest still apply.
 */
export class Registry {
  private readonly inner: Binding.Registry
  private readonly index?: SemanticIndex
  /** Agents whose index entry is stale: registered (upsert) or gone (remove). */
  private readonly stale = new Map<string, 'upsert' | 'remove'>()

  constructor(options: RegistryOptions = {}, inner?: Binding.Registry) {
    const { index, ...rest } = options
    this.index = index
    this.inner = inner ?? callNative(() => new native.Registry(rest))
  }

  static async load(path: string, options: Pick<RegistryOptions, 'index'> = {}): Promise<Registry> {
    const registry = new Registry(options, await callNative(() => native.Registry.load(path)))
    return registry
  }

  /** Applies a batch off the JS thread. */
  async process(messages: (string | PmlMessage)[]): Promise<ProcessResult[]> {
    if (!Array.isArray(messages)) throw invalidArg('messages must be an array')
    const results = (await callNative(() => this.inner.process(messages.map(encode)))) as ProcessResult[]
    return this.track(results)
  }

  /** Applies a batch on the calling thread (small batches: no thread hop). */
  processSync(messages: (string | PmlMessage)[]): ProcessResult[] {
    if (!Array.isArray(messages)) throw invalidArg('messages must be an array')
    return this.track(callNative(() => this.inner.processSync(messages.map(encode))) as ProcessResult[])
  }

  /** Applies one message on the calling thread. */
  handle(message: string | PmlMessage): ProcessResult {
    return this.track([callNative(() => this.inner.handle(encode(message))) as ProcessResult])[0]
  }

  get(id: string): AgentInfo | undefined {
    return callNative(() => this.inner.get(id)) ?? undefined
  }

  byStatus(status: PmlStatus): string[] {
    return callNative(() => this.inner.idsByStatus(status))
  }

  counters(): Binding.RegistryCounters {
    return callNative(() => this.inner.counters())
  }

  get size(): number {
    return this.counters().agents
  }

  /** The agents whose specialty best matches `query`, best first, with their registry record. */
  async findBySpecialty(query: string, k: number): Promise<(AgentInfo & { score: number })[]> {
    const index = this.requireIndex()
    await this.syncIndex()
    if (index.size === 0) return []
    const hits: Match[] = await index.topK(query, k)
    return hits.flatMap((h) => {
      const agent = this.get(h.id)
      return agent ? [{ ...agent, score: h.score }] : []
    })
  }

  /** Brings the index up to date with registrations and deregistrations so far (batched). */
  async syncIndex(): Promise<void> {
    const index = this.requireIndex()
    if (this.stale.size === 0) return
    const entries = [...this.stale]
    this.stale.clear()
    const upserts = entries.flatMap(([id, op]) => {
      const agent = op === 'upsert' ? this.get(id) : undefined
      return agent ? [agent] : []
    })
    const removals = entries.filter(([, op]) => op === 'remove').map(([id]) => id)
    try {
      if (upserts.length > 0) await index.upsert(upserts.map((a) => a.id), upserts.map((a) => a.specialty))
      const present = (await Promise.all(removals.map(async (id) => ((await index.has(id)) ? id : undefined)))).filter(
        (id): id is string => id !== undefined,
      )
      if (present.length > 0) await index.remove(present)
    } catch (error) {
      // Nothing is lost: the same agents are retried on the next sync.
      for (const [id, op] of entries) if (!this.stale.has(id)) this.stale.set(id, op)
      throw error
    }
  }

  save(path: string): Promise<void> {
    return callNative(() => this.inner.save(path))
  }

  private track(results: ProcessResult[]): ProcessResult[] {
    if (this.index) {
      for (const r of results) {
        if (!r.ok || r.duplicate || !r.agentId) continue
        if (r.type === 'register') this.stale.set(r.agentId, 'upsert')
        else if (r.type === 'deregister') this.stale.set(r.agentId, 'remove')
      }
    }
    return results
  }

  private requireIndex(): SemanticIndex {
    if (!this.index) throw invalidArg('this registry was created without an index; pass { index } to search by specialty')
    return this.index
  }
}
