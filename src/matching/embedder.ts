import { assertStrings, parseOptions } from '../errors/index.js'
import { type Binding, callNative, initRuntime, native, requireNative } from '../native/index.js'
import { type EmbedderOptions, EmbedderOptionsSchema } from './options.js'

export const DEFAULT_MODEL: string = EmbedderOptionsSchema.shape.model.parse(undefined)

let nativeOf: (embedder: Embedder) => Binding.NativeEmbedder

/** @internal The binding object of `embedder`, for the index's text calls (not part of the public API). */
export const nativeEmbedder = (embedder: Embedder): Binding.NativeEmbedder => nativeOf(embedder)

/**
 * A sentence-embedding model (all-MiniLM-L6-v2 by default) running on ONNX Runtime in Rust.
 * `embed` gives what sentence-transformers' `encode(normalize_embeddings=True)` gives, off the
 * JS thread.
 */
export class Embedder {
  static {
    nativeOf = (embedder) => embedder.inner
  }

  private readonly inner: Binding.NativeEmbedder

  private constructor(inner: Binding.NativeEmbedder) {
    this.inner = requireNative(inner, native.NativeEmbedder, 'Embedder', 'Embedder.load(options)')
  }

  static async load(options: EmbedderOptions = {}): Promise<Embedder> {
    const parsed = parseOptions(EmbedderOptionsSchema, options, 'Embedder options')
    initRuntime()
    return new Embedder(await callNative(() => native.NativeEmbedder.load(parsed)))
  }

  /** Embeds `texts` into one Float32Array of `texts.length * dim` L2-normalised floats. */
  embed(texts: string[]): Promise<Float32Array> {
    assertStrings(texts, 'texts')
    return callNative(() => this.inner.embed(texts))
  }

  /** The model's input ids and attention mask for `texts`, as `embed` would feed them. */
  tokenize(texts: string[]): Binding.Tokenized {
    assertStrings(texts, 'texts')
    return callNative(() => this.inner.tokenize(texts))
  }

  get dim(): number {
    return this.inner.dim
  }
  get threads(): number {
    return this.inner.threads
  }
  get provider(): string {
    return this.inner.provider
  }
  /** The resolved ONNX file. */
  get modelPath(): string {
    return this.inner.modelPath
  }
  get maxSeqLength(): number {
    return this.inner.maxSeqLength
  }
}
