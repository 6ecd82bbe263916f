// What the matching suite compares against, in the same process and run:
// - the bare ONNX Runtime session (onnxruntime-node) on pre-tokenised input: the floor;
// - @huggingface/transformers' feature-extraction pipeline on the same model file and threads,
//   plus a plain JS cosine loop: what a Node user would write without Myriad.
import { mkdirSync, rmSync, symlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'

import * as ort from 'onnxruntime-node'

import type { Embedder } from '../src/index.js'
import { ROOT } from './harness.js'

export { cosine } from '../src/testing/math.js'

export interface OrtFloor {
  /** One bare `session.run` on the pre-tokenised `i`-th query (mod the query count). */
  run(i: number): Promise<unknown>
  inputNames: readonly string[]
  release(): Promise<void>
}

/**
 * The same ONNX file as `embedder`, opened by onnxruntime-node with the same intra-op threads, fed
 * the tensors our tokenizer makes (`input_ids`, `attention_mask`, and `token_type_ids` zeros where
 * the graph declares it). Tokenising, pooling and normalising are left out: this is the model alone.
 */
export async function openOrtFloor(embedder: Embedder, queries: string[]): Promise<OrtFloor> {
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
    const unknown = session.inputNames.filter((name) => !(name in feed))
    if (unknown.length) throw new Error(`${embedder.modelPath} wants inputs ${unknown.join(', ')}`)
    return feed
  })
  return {
    run: (i) => session.run(feeds[i % feeds.length]),
    inputNames: session.inputNames,
    release: () => session.release(),
  }
}

export interface PeerEmbedder {
  embed(text: string): Promise<Float32Array>
  dispose(): Promise<void>
}

/**
 * transformers.js, fully offline, on the very files our embedder runs: a model folder of symlinks
 * under bench/.cache named the way it expects (`onnx/model.onnx` for dtype fp32,
 * `onnx/model_int8.onnx` for dtype int8 — our int8 file, whichever this CPU gets), same intra-op threads.
 */
export async function transformersPeer(embedder: Embedder, precision: 'fp32' | 'int8'): Promise<PeerEmbedder> {
  const { env, pipeline } = await import('@huggingface/transformers')
  const snapshot = dirname(dirname(embedder.modelPath))
  const root = join(ROOT, 'bench', '.cache', 'transformers-js')
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
    session_options: { intraOpNumThreads: embedder.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' },
  })
  return {
    async embed(text: string) {
      const out = await extract(text, { pooling: 'mean', normalize: true })
      return out.data as Float32Array
    },
    dispose: () => extract.dispose(),
  }
}

/**
 * The plain JS scan a Node user would write: dot products against L2-normalised rows (= cosine),
 * keeping the best k in a small sorted array.
 */
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
