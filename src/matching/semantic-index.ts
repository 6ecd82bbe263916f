import { MyriadError, assertStrings, invalidArg, parseOptions, toFloat32 } from '../errors/index.js'
import { type Binding, callNative, defaults, native, requireNative } from '../native/index.js'
import { Embedder, nativeEmbedder } from './embedder.js'
import { type SemanticIndexSettings, SemanticIndexOptionsSchema } from './options.js'

export interface SemanticIndexOptions extends SemanticIndexSettings {
  /** Lets `upsert`, `topK` and `topKBatch` take texts (and sets `dim` to the model's). */
  embedder?: Embedder
}

function splitOptions(options: SemanticIndexOptions | undefined, what: string): { embedder?: Embedder; settings: Binding.NativeIndexOptions } {
  const { embedder, ...rest } = options ?? {}
  if (embedder !== undefined && !(embedder instanceof Embedder)) throw invalidArg(`${what}: embedder must be an Embedder (from Embedder.load)`)
  const parsed = parseOptions(SemanticIndexOptionsSchema, rest, what)
  return { embedder, settings: { ...parsed, dim: parsed.dim ?? embedder?.dim ?? defaults.index.dim } }
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
  private readonly inner: Binding.NativeSemanticIndex

  private constructor(
    inner: Binding.NativeSemanticIndex,
    private readonly embedder?: Embedder,
  ) {
    this.inner = requireNative(inner, native.NativeSemanticIndex, 'SemanticIndex', 'SemanticIndex.create(options) or SemanticIndex.load(path)')
  }

  /** An empty index. */
  static create(options?: SemanticIndexOptions): SemanticIndex {
    const { embedder, settings } = splitOptions(options, 'SemanticIndex options')
    return new SemanticIndex(
      callNative(() => native.NativeSemanticIndex.create(settings)),
      embedder,
    )
  }

  /** Reads an index written by `save` (dimension and storage come from the file). */
  static async load(path: string, options?: Omit<SemanticIndexOptions, 'dim' | 'storage'>): Promise<SemanticIndex> {
    const { embedder, settings } = splitOptions(options, 'SemanticIndex options')
    const inner = await callNative(() => native.NativeSemanticIndex.load(path, settings))
    if (embedder && embedder.dim !== inner.dim) {
      throw new MyriadError('ERR_DIMENSION', `${path} holds ${inner.dim}-dim vectors but the embedder makes ${embedder.dim}`)
    }
    return new SemanticIndex(inner, embedder)
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
      return callNative(() => this.inner.upsertTexts(nativeEmbedder(embedder), ids, data as string[]))
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
    if (Array.isArray(queries)) {
      assertStrings(queries, 'queries')
      if (queries.length === 0) throw invalidArg('queries must not be empty')
      const embedder = this.requireEmbedder()
      return callNative(() => this.inner.searchTexts(nativeEmbedder(embedder), queries, k))
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
