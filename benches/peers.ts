// What the matching suite compares against, in the same process and run:
// - the bare ONNX Runtime session (onnxruntime-node) on pre-tokenised input: the floor;
// - @huggingface/transformers' feature-extraction pipeline on the same model file and threads,
//   plus a plain JS cosine loop: what a Node user would write without Myriad.
import { mkdirSync, rmSync, symlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'

import * as ort from 'onnxruntime-node'

import type { Embedder } from '../index.js'
import { measure, type Stats } from './harness.js'

export { cosine } from '../devkit/math.js'

/** p50 etc. of one bare `session.run` per query, inputs tokenised beforehand by our tokenizer. */
export async function ortFloor(embedder: Embedder, queries: string[], iterations: number): Promise<Stats> {
  const session = await ort.InferenceSession.create(embedder.modelPath, {
    intraOpNumThreads: embedder.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  })
  const feeds = queries.map((q) => {
    const t = embedder.tokenize([q])
    const dims = [1, t.seqLen]
    const feed: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', t.inputIds, dims),
      attention_mask: new ort.Tensor('int64', t.attentionMask, dims),
    }
    if (session.inputNames.includes('token_type_ids')) {
      feed.token_type_ids = new ort.Tensor('int64', new BigInt64Array(t.seqLen), dims)
    }
    return feed
  })
  let i = 0
  const stats = await measure('ort floor', iterations, () => session.run(feeds[i++ % feeds.length]))
  await session.release()
  return stats
}

export interface PeerEmbedder {
  embed(text: string): Promise<Float32Array>
}

/**
 * transformers.js, fully offline, on the very files our embedder runs: a model folder of symlinks
 * named the way it expects (`onnx/model.onnx`, `onnx/model_int8.onnx`).
 */
export async function transformersPeer(embedder: Embedder, precision: 'fp32' | 'int8'): Promise<PeerEmbedder> {
  const { env, pipeline } = await import('@huggingface/transformers')
  const snapshot = dirname(dirname(embedder.modelPath))
  const root = join(process.cwd(), 'bench', '.cache', 'transformers-js')
  const model = join(root, 'sentence-transformers', 'all-MiniLM-L6-v2')
  rmSync(model, { recursive: true, force: true })
  mkdirSync(join(model, 'onnx'), { recursive: true })
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
    symlinkSync(join(snapshot, f), join(model, f))
  }
  symlinkSync(embedder.modelPath, join(model, 'onnx', precision === 'fp32' ? 'model.onnx' : 'model_int8.onnx'))
  env.allowRemoteModels = false
  env.allowLocalModels = true
  env.localModelPath = root
  const extract = await pipeline('feature-extraction', 'sentence-transformers/all-MiniLM-L6-v2', {
    dtype: precision,
    device: 'cpu',
    session_options: { intraOpNumThreads: embedder.threads, interOpNumThreads: 1 },
  })
  return {
    async embed(text: string) {
      const out = await extract(text, { pooling: 'mean', normalize: true })
      return out.data as Float32Array
    },
  }
}

/** The plain JS scan: dot products against normalised rows, keeping the best k. */
export function jsTopK(rows: Float32Array, dim: number, query: Float32Array, k: number): { index: number; score: number }[] {
  const best: { index: number; score: number }[] = []
  const n = rows.length / dim
  for (let r = 0; r < n; r++) {
    let dot = 0
    const base = r * dim
    for (let j = 0; j < dim; j++) dot += rows[base + j] * query[j]
    if (best.length < k || dot > best[best.length - 1].score) {
      best.push({ index: r, score: dot })
      best.sort((a, b) => b.score - a.score)
      if (best.length > k) best.pop()
    }
  }
  return best
}
