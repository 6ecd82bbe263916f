// `ctx.memory`: per-agent memories embedded with the experiment's native `Embedder` and searched
// with a native `SemanticIndex` (f16 storage) of the agent's own, made when the agent first adds
// something: an agent that remembers nothing costs nothing. Texts added or recalled in the same
// pass of the event loop are embedded in one call, and a text seen before is not embedded again.
import type { Recollection } from '../agents/index.js'
import { invalidArg } from '../errors/index.js'
import { type Embedder, SemanticIndex } from '../matching/index.js'

/** Distinct texts whose vectors are kept for reuse (oldest dropped first past this). */
const CACHE_TEXTS = 100_000

interface Memories {
  index: SemanticIndex
  texts: string[]
  ticks: number[]
}

/** What a checkpoint keeps: every agent's memories, with the vectors they were stored from. */
export interface MemorySnapshot {
  agents: [slot: number, texts: string[], ticks: number[], vectors: Float32Array][]
  embedded: number
  texts: number
}

export class MemoryStore {
  private readonly bySlot = new Map<number, Memories>()
  private readonly vectors = new Map<string, Float32Array>()
  private pending = new Map<string, { resolve: (v: Float32Array) => void; reject: (e: unknown) => void }>()
  private readonly inFlight = new Map<string, Promise<Float32Array>>()
  private scheduled = false
  /** Texts embedded so far (each distinct text once while it is cached). */
  embedded = 0
  /** Texts remembered, over all agents. */
  texts = 0

  constructor(private readonly embedder: () => Promise<Embedder>) {}

  /** Agents that remember anything. */
  get agents(): number {
    return this.bySlot.size
  }

  /** Between ticks (nothing being embedded): each memory's vector as embedded (the index keeps f16). */
  snapshot(): MemorySnapshot {
    const agents: MemorySnapshot['agents'] = []
    for (const [slot, m] of this.bySlot) {
      const vectors = m.texts.map((text, row) => this.vectors.get(text) ?? m.index.get(String(row)))
      const dim = vectors[0]?.length ?? 0
      const flat = new Float32Array(vectors.length * dim)
      vectors.forEach((v, i) => flat.set(v, i * dim))
      agents.push([slot, [...m.texts], [...m.ticks], flat])
    }
    return { agents, embedded: this.embedded, texts: this.texts }
  }

  /** Rebuilds the agents' memories from a snapshot, each index filled in one call. */
  async restore(s: MemorySnapshot): Promise<void> {
    for (const [slot, texts, ticks, flat] of s.agents) {
      if (texts.length === 0) continue
      const dim = flat.length / texts.length
      const index = SemanticIndex.create({ dim, storage: 'f16' })
      await index.upsert(
        texts.map((_, row) => String(row)),
        flat,
      )
      this.bySlot.set(slot, { index, texts, ticks })
      texts.forEach((text, i) => {
        if (!this.vectors.has(text)) this.vectors.set(text, flat.slice(i * dim, (i + 1) * dim))
      })
    }
    this.embedded = s.embedded
    this.texts = s.texts
  }

  size(slot: number): number {
    return this.bySlot.get(slot)?.texts.length ?? 0
  }

  add(slot: number, text: string, tick: number): Promise<void> {
    if (typeof text !== 'string' || text.length === 0) throw invalidArg('memory.add needs a non-empty text')
    return this.remember(slot, text, tick)
  }

  private async remember(slot: number, text: string, tick: number): Promise<void> {
    const vector = await this.vectorOf(text)
    let memories = this.bySlot.get(slot)
    if (!memories) {
      memories = { index: SemanticIndex.create({ dim: vector.length, storage: 'f16' }), texts: [], ticks: [] }
      this.bySlot.set(slot, memories)
    }
    const row = memories.texts.length
    memories.texts.push(text)
    this.texts++
    memories.ticks.push(tick)
    await memories.index.upsert([String(row)], vector)
  }

  recall(slot: number, query: string, k = 5): Promise<Recollection[]> {
    if (typeof query !== 'string' || query.length === 0) throw invalidArg('memory.recall needs a non-empty query')
    if (!Number.isInteger(k) || k < 1) throw invalidArg(`memory.recall: k must be a positive integer, got ${String(k)}`)
    return this.search(slot, query, k)
  }

  private async search(slot: number, query: string, k: number): Promise<Recollection[]> {
    const memories = this.bySlot.get(slot)
    if (!memories || memories.texts.length === 0) return []
    const vector = await this.vectorOf(query)
    const hits = await memories.index.topK(vector, Math.min(k, memories.texts.length))
    return hits.map((h) => ({ text: memories.texts[Number(h.id)], tick: memories.ticks[Number(h.id)], score: h.score }))
  }

  private vectorOf(text: string): Promise<Float32Array> {
    const known = this.vectors.get(text)
    if (known) return Promise.resolve(known)
    // Asked for again while its batch is at the embedder: the same promise, not a second embedding.
    const flying = this.inFlight.get(text)
    if (flying) return flying
    const promise = new Promise<Float32Array>((resolve, reject) => {
      this.pending.set(text, { resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => void this.embedPending())
      }
    })
    this.inFlight.set(text, promise)
    return promise
  }

  private async embedPending(): Promise<void> {
    const batch = this.pending
    this.pending = new Map()
    this.scheduled = false
    const texts = [...batch.keys()]
    try {
      const embedder = await this.embedder()
      const flat = await embedder.embed(texts)
      this.embedded += texts.length
      const dim = embedder.dim
      texts.forEach((text, i) => {
        const vector = flat.slice(i * dim, (i + 1) * dim)
        this.vectors.set(text, vector)
        if (this.vectors.size > CACHE_TEXTS) this.vectors.delete(this.vectors.keys().next().value as string)
        this.inFlight.delete(text)
        batch.get(text)?.resolve(vector)
      })
    } catch (error) {
      for (const [text, waiter] of batch) {
        this.inFlight.delete(text)
        waiter.reject(error)
      }
    }
  }
}
