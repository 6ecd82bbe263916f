import { callNative } from './errors.js'
import { native, type Binding } from './native.js'
import { initRuntime } from './runtime.js'
import { assertStrings } from './validate.js'

export interface EmbedderOptions {
  /** Hugging Face hub repo id, or a local directory with `tokenizer.json` and the ONNX file. */
  model?: string
  /** Hub revision (branch, tag or commit); default `main`. */
  revision?: string
  /** ONNX file inside the repo or directory; overrides `precision`. */
  file?: string
  /** `fp32` = `onnx/model.onnx` (default); `int8` = `onnx/model_qint8_avx512_vnni.onnx`, or `onnx/model_quint8_avx2.onnx` on x86 CPUs without VNNI. */
  precision?: 'fp32' | 'int8'
  /** Hub cache directory (default `$HF_HOME/hub`, i.e. `~/.cache/huggingface/hub`). */
  cacheDir?: string
  /** Never download; only the cache (default: the `HF_HUB_OFFLINE` environment variable). */
  offline?: boolean
  /** ONNX Runtime intra-op threads (default: one per core). */
  threads?: number
  /** Execution provider: `cpu` (default), `coreml` (Apple, Metal/ANE) or `cuda`. */
  provider?: 'cpu' | 'coreml' | 'cuda'
}

export const DEFAULT_MODEL = 'sentence-transformers/all-MiniLM-L6-v2'

/**
 * A sentence-embedding model (all-MiniLM-L6-v2 by default) running on ONNX Runtime in Rust.
 * `embed` gives what sentence-transformers' `encode(normalize_embeddings=True)` gives, off the
 * JS thread.
 */
export class Embedder {
  /** @internal the binding object, shared with `SemanticIndex`. */
  readonly native: Binding.Embedder

  private constructor(inner: Binding.Embedder) {
    this.native = inner
  }

  static async load(options: EmbedderOptions = {}): Promise<Embedder> {
    initRuntime()
    const inner = await callNative(() => native.Embedder.load({ model: DEFAULT_MODEL, ...options }))
    return new Embedder(inner)
  }

  /** Embeds `texts` into one Float32Array of `texts.length * dim` L2-normalised floats. */
  embed(texts: string[]): Promise<Float32Array> {
    assertStrings(texts, 'texts')
    return callNative(() => this.native.embed(texts))
  }

  /** The model's input ids and attention mask for `texts`, as `embed` would feed them. */
  tokenize(texts: string[]): Binding.Tokenized {
    assertStrings(texts, 'texts')
    return callNative(() => this.native.tokenize(texts))
  }

  get dim(): number {
    return this.native.dim
  }
  get threads(): number {
    return this.native.threads
  }
  get provider(): string {
    return this.native.provider
  }
  /** The resolved ONNX file. */
  get modelPath(): string {
    return this.native.modelPath
  }
  get maxSeqLength(): number {
    return this.native.maxSeqLength
  }
}
