// Suite `policy`: routing-decision latency (MAMA stress study, MARL column) — one decision per call
// from JS, and batched — next to onnxruntime-node on the same exported ONNX file and a plain JS
// forward pass over the same weights, in the same run.
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import * as ort from 'onnxruntime-node'

import { Policy, STATE_DIM } from '../../src/index.js'
import { measure, round, verdict, type Row, type Suite } from '../harness.js'

interface Layer {
  inputs: number
  outputs: number
  weight: Float32Array
  bias: Float32Array
}

/** The layers of a safetensors file written by `Policy.saveSafetensors` (l<i>.weight / l<i>.bias). */
function readSafetensors(path: string): Layer[] {
  const buf = readFileSync(path)
  const headerLen = Number(buf.readBigUInt64LE(0))
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'))
  const data = buf.subarray(8 + headerLen)
  const tensor = (name: string) => {
    const [start, end] = header[name].data_offsets
    return { shape: header[name].shape as number[], values: new Float32Array(data.buffer.slice(data.byteOffset + start, data.byteOffset + end)) }
  }
  const layers: Layer[] = []
  for (let i = 0; header[`l${i}.weight`]; i++) {
    const w = tensor(`l${i}.weight`)
    layers.push({ outputs: w.shape[0], inputs: w.shape[1], weight: w.values, bias: tensor(`l${i}.bias`).values })
  }
  return layers
}

/** The plain JS forward pass a Node user would write: logits -> softmax -> argmax. */
function jsDecide(layers: Layer[], state: Float32Array): number {
  let x: Float32Array = state
  layers.forEach((l, li) => {
    const y = new Float32Array(l.outputs)
    for (let o = 0; o < l.outputs; o++) {
      let acc = l.bias[o]
      const row = o * l.inputs
      for (let i = 0; i < l.inputs; i++) acc += l.weight[row + i] * x[i]
      y[o] = li + 1 < layers.length && acc < 0 ? 0 : acc
    }
    x = y
  })
  let best = 0
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i
  return best
}

export const policy: Suite = {
  name: 'policy',
  title: 'routing decision latency, MLP 50-256-128-64-5 (single call from JS and batched)',
  columns: ['n', 'mean_us', 'std_us', 'p50_us', 'batched_per_s', 'peer_ort_us', 'peer_js_us'],
  async run({ opts, progress, rand: seeded }) {
    const ns = opts.n ?? (opts.quick ? [100, 1000] : [10, 50, 100, 500, 1000, 5000])
    const calls = opts.iterations ?? (opts.quick ? 2000 : 20_000)
    const dir = mkdtempSync(join(tmpdir(), 'myriad-bench-policy-'))
    const model = Policy.create({ seed: 42 })
    await model.exportOnnx(join(dir, 'policy.onnx'))
    await model.saveSafetensors(join(dir, 'policy.safetensors'))
    const layers = readSafetensors(join(dir, 'policy.safetensors'))
    const session = await ort.InferenceSession.create(join(dir, 'policy.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 })
    const rand = seeded(42)
    const rows: Row[] = []
    for (const n of ns) {
      // One state per agent, cycled through.
      const states = Float32Array.from({ length: n * STATE_DIM }, () => rand())
      const state = (i: number) => states.subarray((i % n) * STATE_DIM, ((i % n) + 1) * STATE_DIM)
      let i = 0
      const ours = await measure(`decide n=${n}`, calls, () => model.decide(state(i++)))
      let j = 0
      const js = await measure(`js n=${n}`, Math.min(calls, 5000), () => jsDecide(layers, state(j++)))
      let k = 0
      const tensors = Array.from({ length: Math.min(n, 1000) }, (_, s) => new ort.Tensor('float32', state(s), [1, STATE_DIM]))
      const peer = await measure(`ort n=${n}`, Math.min(calls, 5000), () => session.run({ state: tensors[k++ % tensors.length] }))
      // Batched: 100 decisions per agent (a tick each), at most 100,000 per call.
      const batchSize = Math.min(100 * n, 100_000)
      const batch = Float32Array.from({ length: batchSize * STATE_DIM }, (_, x) => states[x % states.length])
      const batched = await measure(`batch n=${n}`, opts.quick ? 3 : 10, () => model.decideBatch(batch))
      rows.push({
        n,
        mean_us: round(ours.mean_ms * 1000, 2),
        std_us: round(ours.std_ms * 1000, 2),
        p50_us: round(ours.p50_ms * 1000, 2),
        batched_per_s: Math.round(batchSize / (batched.p50_ms / 1000)),
        peer_ort_us: round(peer.p50_ms * 1000, 2),
        peer_js_us: round(js.p50_ms * 1000, 2),
        batch_size: batchSize,
      })
      progress(`n=${n}: ${round(ours.p50_ms * 1000, 2)} us/decision, ${Math.round(batchSize / (batched.p50_ms / 1000))}/s batched`)
    }
    await session.release()
    return rows
  },
  verdicts(rows) {
    const worst = Math.max(...rows.map((r) => r.p50_us as number))
    const slowestBatch = Math.min(...rows.filter((r) => (r.batch_size as number) >= 10_000).map((r) => r.batched_per_s as number))
    const vsOrt = rows.every((r) => (r.p50_us as number) < (r.peer_ort_us as number))
    return [
      verdict(worst <= 5, `single decision from JS p50 at most ${worst} us (target <= 5 us)`),
      verdict(slowestBatch >= 1_000_000, `batched (>= 10,000 states a call) at least ${slowestBatch} decisions/s (target >= 1,000,000)`),
      verdict(vsOrt, `faster than onnxruntime-node per decision on every row`),
    ]
  },
}
