// The options of the matching components, as zod schemas: the TypeScript types are inferred from
// them, defaults come from the Rust core (`defaults`), and docs/reference/options.md is generated
// from their descriptions.
import { z } from 'zod'

import { defaults } from '../native/index.js'

const count = (what: string) => z.number().int().positive().describe(what)

export const EmbedderOptionsSchema = z
  .strictObject({
    model: z
      .string()
      .min(1)
      .default(defaults.embedder.model)
      .describe('Hugging Face hub repo id, or a local directory with `tokenizer.json` and the ONNX file.'),
    revision: z.string().min(1).optional().describe('Hub revision (branch, tag or commit); default `main`.'),
    file: z.string().min(1).optional().describe('ONNX file inside the repo or directory; overrides `precision`.'),
    precision: z
      .enum(['fp32', 'int8'])
      .default(defaults.embedder.precision as 'fp32' | 'int8')
      .describe('`fp32` = `onnx/model.onnx`; `int8` = `onnx/model_qint8_avx512_vnni.onnx`, or `onnx/model_quint8_avx2.onnx` on x86 CPUs without VNNI.'),
    cacheDir: z.string().min(1).optional().describe('Hub cache directory (default `$HF_HOME/hub`, i.e. `~/.cache/huggingface/hub`).'),
    offline: z.boolean().optional().describe('Never download; only the cache (default: the `HF_HUB_OFFLINE` environment variable).'),
    threads: count('ONNX Runtime intra-op threads (default: one per core).').optional(),
    provider: z
      .enum(['cpu', 'coreml', 'cuda'])
      .default(defaults.embedder.provider as 'cpu' | 'coreml' | 'cuda')
      .describe('Execution provider: `cpu`, `coreml` (Apple, Metal/ANE) or `cuda`.'),
  })
  .describe('Embedder.load(options)')

export type EmbedderOptions = z.input<typeof EmbedderOptionsSchema>

/** The options of a `SemanticIndex` apart from its embedder (an object, not data). */
export const SemanticIndexOptionsSchema = z
  .strictObject({
    dim: count(`Vector dimension (default: the embedder's, else ${defaults.index.dim}).`).optional(),
    storage: z
      .enum(['f32', 'f16'])
      .default(defaults.index.storage as 'f32' | 'f16')
      .describe(
        '`f32`, or `f16`: half the memory, scores within ~1e-3. Either way, searches of up to four queries first read an int8 sketch of the rows and score in full only the rows that can still make the top k: the same results.',
      ),
    threads: count('Scan threads (default: one per core).').optional(),
    parallelThreshold: count('Index size from which one full scan is split across threads (4x that for the sketch).').default(defaults.index.parallelThreshold),
  })
  .describe('SemanticIndex.create(options) and SemanticIndex.load(path, options); `embedder` is passed beside these')

export type SemanticIndexSettings = z.input<typeof SemanticIndexOptionsSchema>
