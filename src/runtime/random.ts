// Seeded random streams, one per agent, kept as one 32-bit word each in a typed array: the same
// seed gives every agent the same stream in every run, whatever order turns run in.

/** A 32-bit mix (the murmur3 finaliser): spreads (seed, index) into unrelated stream starts. */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
  return (x ^ (x >>> 16)) >>> 0
}

/** A 32-bit hash of a string (FNV-1a), for seeds derived from names. */
export function hash32(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return mix32(h)
}

/** Per-agent mulberry32 streams: `next(i)` advances agent i's stream and returns a float in [0, 1). */
export class RandomStreams {
  private readonly words: Uint32Array

  constructor(seed: number, count: number) {
    this.words = new Uint32Array(count)
    const base = mix32(seed >>> 0)
    for (let i = 0; i < count; i++) this.words[i] = mix32(base ^ mix32(i + 1))
  }

  next(i: number): number {
    const a = (this.words[i] + 0x6d2b79f5) >>> 0
    this.words[i] = a
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** The streams' positions (for checkpoints). */
  snapshot(): Uint32Array {
    return this.words.slice()
  }

  /** Puts the streams back where a snapshot of as many streams had them. */
  restore(words: Uint32Array): void {
    if (words.length !== this.words.length) throw new Error(`a snapshot of ${words.length} random streams for ${this.words.length}`)
    this.words.set(words)
  }
}

/** One seeded stream, for what the experiment itself draws (profiles, sampling). */
export function stream(seed: number): () => number {
  const s = new RandomStreams(seed, 1)
  return () => s.next(0)
}
