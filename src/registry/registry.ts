import { invalidArg, parseOptions } from '../errors/index.js'
import { type Match, SemanticIndex } from '../matching/index.js'
import { type Binding, callNative, native, requireNative } from '../native/index.js'
import { type RegistrySettings, RegistryOptionsSchema } from './options.js'
import { MAX_JOINED_CHARS, encode, joinBatch } from './batch.js'
import { decodeOutcome, type PmlMessage, type PmlStatus, type ProcessResult } from './pml.js'

export interface RegistryOptions extends RegistrySettings {
  /** Keeps agents' specialties searchable (`findBySpecialty`); needs an embedder on the index. */
  index?: SemanticIndex
}

function checkIndex(index: unknown): SemanticIndex | undefined {
  if (index !== undefined && !(index instanceof SemanticIndex)) throw invalidArg('Registry options: index must be a SemanticIndex')
  return index
}

export type AgentInfo = Binding.AgentInfo

/**
 * Agents, their specialties, load and trust, kept by Rust and driven by PML messages. Each message
 * gets its own result: a bad one is rejected with a code and a reason, the rest still apply.
 */
export class Registry {
  private readonly inner: Binding.NativeRegistry
  /** Longest joined string per part of a batch (a field so that tests can split small batches). */
  private readonly joinLimit = MAX_JOINED_CHARS
  /** Agents whose index entry is stale: registered (upsert) or gone (remove). */
  private readonly stale = new Map<string, 'upsert' | 'remove'>()

  private constructor(
    inner: Binding.NativeRegistry,
    private readonly index?: SemanticIndex,
  ) {
    this.inner = requireNative(inner, native.NativeRegistry, 'Registry', 'Registry.create(options) or Registry.load(path)')
  }

  static create(options?: RegistryOptions): Registry {
    const { index, ...rest } = options ?? {}
    const settings = parseOptions(RegistryOptionsSchema, rest, 'Registry options')
    return new Registry(
      callNative(() => native.NativeRegistry.create(settings)),
      checkIndex(index),
    )
  }

  /** Reads a registry written by `save` (its window and dedupe capacity come from the file). */
  static async load(path: string, options: Pick<RegistryOptions, 'index'> = {}): Promise<Registry> {
    const index = checkIndex(options.index)
    return new Registry(await callNative(() => native.NativeRegistry.load(path)), index)
  }

  /** Applies a batch off the JS thread; one result per message, in order. */
  async process(messages: (string | PmlMessage)[]): Promise<ProcessResult[]> {
    if (!Array.isArray(messages)) throw invalidArg('messages must be an array')
    const texts = messages.map(encode)
    const outcomes: Binding.BatchOutcome[] = []
    // Parts in turn, so that a batch applies in order even when it is split.
    for (const part of joinBatch(texts, this.joinLimit)) outcomes.push(await callNative(() => this.inner.process(part.text, part.lengths)))
    return this.decode(texts, outcomes)
  }

  /** Applies a batch on the calling thread (small batches: no thread hop). */
  processSync(messages: (string | PmlMessage)[]): ProcessResult[] {
    if (!Array.isArray(messages)) throw invalidArg('messages must be an array')
    const texts = messages.map(encode)
    return this.decode(
      texts,
      joinBatch(texts, this.joinLimit).map((part) => callNative(() => this.inner.processSync(part.text, part.lengths))),
    )
  }

  /** Applies one message on the calling thread. */
  handle(message: string | PmlMessage): ProcessResult {
    const text = encode(message)
    const out = callNative(() => this.inner.handle(text))
    if (typeof out !== 'number') return decodeOutcome(2 | (7 << 2), out)
    const result = decodeOutcome(out)
    this.track(text, result)
    return result
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
      if (upserts.length > 0)
        await index.upsert(
          upserts.map((a) => a.id),
          upserts.map((a) => a.specialty),
        )
      const present = (await Promise.all(removals.map(async (id) => ((await index.has(id)) ? id : undefined)))).filter((id): id is string => id !== undefined)
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

  private decode(texts: string[], parts: Binding.BatchOutcome[]): ProcessResult[] {
    // A plain loop over the codes, rejections patched in after, tracking only with an index:
    // this runs on the JS thread for every message, where a Map lookup per message cost a
    // measurable share of a batch (docs/benchmarks/registry.md).
    const results = new Array<ProcessResult>(texts.length)
    let offset = 0
    for (const { codes, rejections } of parts) {
      for (let i = 0; i < codes.length; i++) results[offset + i] = decodeOutcome(codes[i])
      for (const r of rejections) results[offset + r.index] = decodeOutcome(codes[r.index], r)
      offset += codes.length
    }
    if (this.index) results.forEach((r, i) => this.track(texts[i], r))
    return results
  }

  /** Notes registrations and deregistrations the index has to follow. */
  private track(text: string, r: ProcessResult): void {
    if (!this.index || !r.ok || r.duplicate || (r.type !== 'register' && r.type !== 'deregister')) return
    const from = (JSON.parse(text) as { from: string }).from
    this.stale.set(from, r.type === 'register' ? 'upsert' : 'remove')
  }

  private requireIndex(): SemanticIndex {
    if (!this.index) throw invalidArg('this registry was created without an index; pass { index } to search by specialty')
    return this.index
  }
}
