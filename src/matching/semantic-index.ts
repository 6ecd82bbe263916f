import { MyriadError, callNative, invalidArg } from './errors.js'
import type { Embedder } from './embedder.js'
import { native, type Binding } from './native.js'
import { assertPositiveInt, assertStrings, toFloat32 } from './validate.js'

export interface SemanticIndexOptions {
  /** Vector dimension (default: the embedder's, else 384). */
  dim?: number
  /**
   * `f32` (default) or `f16`: half the memory, scores within ~1e-3. Either way, searches of up to
   * four queries first read an int8 sketch of the rows (a quarter of f32's bytes, kept beside
   * them) and score in full only the rows that can still make the top k: the same results.
   */
  storage?: 'f32' | 'f16'
  /** Scan threads (default: one per core). */
  threads?: number
  /** Index size from which one full scan is split across threads (default 4096; 4x that for the sketch). */
  parallelThreshold?: number
  /** Lets `upsert`, `topK` and `topKBatch` take texts. */
  embedder?: Embedder
}

export interface Match {
  id: string
  /** Cosine similarity, in [-1, 1]. */
  score: number
}

export interface UpsertResult {
  inserted: number
  updated: number
}

/**
 * Agents' specialty vectors, searched exactly (brute force, SIMD, multi-threaded) for the k most
 * similar by cosine. Ids are strings (UUIDs in practice). Work runs off the JS thread.
 */
export class SemanticIndex {
  private readonly inner: Binding.SemanticIndex
  private readonly embedder?: Embedder

  constructor(options: SemanticIndexOptions = {}, inner?: Binding.SemanticIndex) {
    const { embedder, ...rest } = options
    this.embedder = embedder
    this.inner = inner ?? callNative(() => new native.SemanticIndex({ dim: embedder?.dim, ...rest }))
  }

  /** Reads an index written by `save` (dimension and storage come from the file). */
  static async load(path: string, options: Omit<SemanticIndexOptions, 'dim' | 'storage'> = {}): Promise<SemanticIndex> {
    const { embedder, ...rest } = options
    const inner = await callNative(() => native.SemanticIndex.load(path, rest))
    if (embedder && embedder.dim !== inner.dim) {
      throw new MyriadError('ERR_DIMENSION', `${path} holds ${inner.dim}-dim vectors but the embedder makes ${embedder.dim}`)
    }
    return new SemanticIndex({ embedder }, inner)
  }

  /**
   * Inserts or replaces agents. `data` is either their texts (embedded with the index's embedder)
   * or their vectors, `ids.length * dim` floats row-major. A batch is all-or-nothing.
   */
  upsert(ids: string[], data: string[] | Float32Array | number[]): Promise<UpsertResult> {
    assertStrings(ids, 'ids')
    if (Array.isArray(data) && (data.length === 0 || typeof data[0] === 'string')) {
      assertStrings(data, 'texts')
      if (data.length !== ids.length) throw invalidArg(`${ids.length} ids but ${data.length} texts`)
      const embedder = this.requireEmbedder()
      return callNative(() => this.inner.upsertTexts(embedder.native, ids, data as string[]))
    }
    const vectors = toFloat32(data, 'vectors')
    return callNative(() => this.inner.upsert(ids, vectors))
  }

  /** Removes agents; rejects with `ERR_UNKNOWN_ID` (removing none) if any id is absent. */
  remove(ids: string[]): Promise<number> {
    assertStrings(ids, 'ids')
    return callNative(() => this.inner.remove(ids))
  }

  /** The k best matches for one query (a text, or a vector of `dim` floats), best first. */
  async topK(query: string | Float32Array | number[], k: number): Promise<Match[]> {
    const batch = typeof query === 'string' ? [query] : toFloat32(query, 'query')
    if (!(typeof query === 'string') && batch.length !== this.dim) {
      throw new MyriadError('ERR_DIMENSION', `query has ${batch.length} floats; the index holds ${this.dim}-dim vectors`)
    }
    const [hits] = await this.topKBatch(batch, k)
    return hits
  }

  /** The k best matches for each query: texts, or `n * dim` floats. */
  topKBatch(queries: string[] | Float32Array, k: number): Promise<Match[][]> {
    assertPositiveInt(k, 'k')
    if (Array.isArray(queries)) {
      assertStrings(queries, 'queries')
      if (queries.length === 0) throw invalidArg('queries must not be empty')
      const embedder = this.requireEmbedder()
      return callNative(() => this.inner.searchTexts(embedder.native, queries, k))
    }
    const vectors = toFloat32(queries, 'queries')
    let now: Match[][] | null
    try {
      now = callNative(() => this.inner.searchInline(vectors, k))
    } catch (error) {
      return Promise.reject(error)
    }
    return now ? Promise.resolve(now) : callNative(() => this.inner.search(vectors, k))
  }

  /** The stored (L2-normalised) vector of an agent; throws `ERR_UNKNOWN_ID`. */
  get(id: string): Float32Array {
    return callNative(() => this.inner.get(id))
  }

  /** Whether the index holds `id`: answered on the JS thread unless an upsert holds the index. */
  has(id: string): Promise<boolean> {
    if (typeof id !== 'string') return Promise.reject(invalidArg('id must be a string'))
    const now = this.inner.hasInline(id)
    return now === null ? callNative(() => this.inner.has(id)) : Promise.resolve(now)
  }

  /** Writes the index to `path` (atomically: a temporary file, then a rename). */
  save(path: string): Promise<void> {
    return callNative(() => this.inner.save(path))
  }

  get size(): number {
    return this.inner.size
  }
  get dim(): number {
    return this.inner.dim
  }
  get storage(): 'f32' | 'f16' {
    return this.inner.storage as 'f32' | 'f16'
  }

  private requireEmbedder(): Embedder {
    if (!this.embedder) {
      throw new MyriadError('ERR_NO_EMBEDDER', 'this index was created without an embedder, so it takes vectors, not texts')
    }
    return this.embedder
  }
}
