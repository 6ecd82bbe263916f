// The real model (all-MiniLM-L6-v2 from the Hugging Face cache, placed by `npm run fetch-model`)
// against reference embeddings from Python sentence-transformers (fixtures/golden.json, made by
// scripts/make_golden.py).
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'

import test from 'ava'

import { Embedder, MyriadError, SemanticIndex } from '../../src/index.js'
import { cosine } from '../helpers.js'

interface Golden {
  dim: number
  max_seq_length: number
  items: { text: string; embedding: number[] }[]
}
const golden: Golden = JSON.parse(readFileSync(new URL('../fixtures/golden.json', import.meta.url), 'utf8'))
const texts = golden.items.map((i) => i.text)

const fp32 = Embedder.load({ precision: 'fp32', offline: true })
const int8 = Embedder.load({ precision: 'int8', offline: true })

async function codeOf(p: Promise<unknown> | (() => unknown)) {
  const e = await (typeof p === 'function' ? Promise.resolve().then(p) : p).then(
    () => undefined,
    (err: unknown) => err,
  )
  return e instanceof MyriadError ? e.code : `not a MyriadError: ${String(e)}`
}

test('the golden fixture covers what the issue asks for', (t) => {
  t.true(golden.items.length >= 30)
  t.true(texts.includes(''), 'the empty string')
  t.true(
    texts.some((s) => [...s].some((c) => c.codePointAt(0)! > 0x7f)),
    'non-ASCII',
  )
  t.is(golden.dim, 384)
})

test('fp32 embeddings match sentence-transformers (cosine >= 0.9999 on every sentence)', async (t) => {
  const model = await fp32
  t.is(model.dim, 384)
  t.is(model.maxSeqLength, 256)
  const out = await model.embed(texts)
  t.is(out.length, texts.length * 384)
  let worst = 1
  golden.items.forEach((item, i) => {
    const row = out.subarray(i * 384, (i + 1) * 384)
    const c = cosine(row, item.embedding)
    worst = Math.min(worst, c)
    t.true(c >= 0.9999, `cosine ${c} for ${JSON.stringify(item.text.slice(0, 40))}`)
    t.true(Math.abs(cosine(row, row) - 1) < 1e-5 && Math.abs(Math.hypot(...row) - 1) < 1e-4, 'unit length')
  })
  t.log(`fp32 worst cosine ${worst.toFixed(7)}`)
})

test('int8 embeddings stay close to the reference (cosine >= 0.98 on every sentence)', async (t) => {
  const model = await int8
  // s8 weights where the CPU has VNNI, u8 weights on other x86 CPUs (see crates/myriad-core/src/model.rs).
  t.regex(model.modelPath, /model_(qint8_avx512_vnni|quint8_avx2)\.onnx$/)
  const out = await model.embed(texts)
  let worst = 1
  golden.items.forEach((item, i) => {
    const c = cosine(out.subarray(i * 384, (i + 1) * 384), item.embedding)
    worst = Math.min(worst, c)
    t.true(c >= 0.98, `cosine ${c} for ${JSON.stringify(item.text.slice(0, 40))}`)
  })
  t.log(`int8 worst cosine ${worst.toFixed(5)}`)
})

test('a text embeds the same alone or inside a large, length-sorted batch', async (t) => {
  const model = await fp32
  const many = Array.from({ length: 150 }, (_, i) => texts[i % texts.length] + (i >= texts.length ? ` #${i}` : ''))
  const batch = await model.embed(many)
  for (const i of [0, 7, 33, 149]) {
    const alone = await model.embed([many[i]])
    t.true(cosine(alone, batch.subarray(i * 384, (i + 1) * 384)) > 0.99999, `row ${i}`)
  }
  t.is((await model.embed([])).length, 0)
})

test('tokenize truncates at 256 tokens and pads to the longest in the batch', async (t) => {
  const model = await fp32
  const long = texts.reduce((a, b) => (b.length > a.length ? b : a))
  const enc = model.tokenize(['', 'hello world', long])
  t.is(enc.batch, 3)
  t.is(enc.seqLen, 256)
  t.is(enc.inputIds.length, 3 * 256)
  const maskSum = (row: number) => enc.attentionMask.subarray(row * 256, (row + 1) * 256).reduce((a, b) => a + Number(b), 0)
  t.deepEqual([maskSum(0), maskSum(1), maskSum(2)], [2, 4, 256])
  t.is(enc.inputIds[0], 101n, '[CLS]')
  t.is(enc.inputIds[1], 102n, '[SEP]')
})

test('embedding runs off the JS thread: timers keep firing meanwhile', async (t) => {
  const model = await fp32
  const big = Array.from({ length: 400 }, (_, i) => `${texts[i % texts.length]} variant ${i}`)
  let ticks = 0
  const timer = setInterval(() => ticks++, 2)
  let settled = false
  const pending = model.embed(big).then(() => (settled = true))
  await new Promise((r) => setImmediate(r))
  t.false(settled, 'embed returned before the work was done')
  await pending
  clearInterval(timer)
  t.true(ticks >= 5, `only ${ticks} timer ticks while embedding`)
})

test("embedding calls wait on the model's own thread, not in libuv's pool: a file read does not wait behind them", async (t) => {
  const model = await fp32
  const batch = Array.from({ length: 300 }, (_, i) => `${texts[i % texts.length]} pool ${i}`)
  let done = 0
  // More calls than libuv has threads (4): queued there, each would hold a thread while it waited
  // for the model, and the read below would wait for some of them to finish.
  const calls = Array.from({ length: 6 }, () => model.embed(batch).then(() => done++))
  await readFile(new URL(import.meta.url))
  t.is(done, 0, `the file read waited for ${done} embedding call(s)`)
  await Promise.all(calls)
  t.is(done, 6)
})

test('semantic matching end to end: the right specialist comes first', async (t) => {
  const embedder = await fp32
  const index = SemanticIndex.create({ embedder })
  t.is(index.dim, 384)
  const agents = {
    accountant: 'Certified accountant: personal income tax returns, deductions and bookkeeping',
    chef: 'Professional chef specialising in Italian cuisine, pasta and sauces',
    medic: 'Emergency physician: triage, first aid, diagnosing chest pain and fractures',
    coder: 'Senior Rust engineer: systems programming, async runtimes, performance tuning',
    lawyer: 'Lawyer for tenancy disputes, rental contracts and eviction notices',
  }
  await index.upsert(Object.keys(agents), Object.values(agents))
  const cases: [string, string][] = [
    ['How do I file my tax return and claim deductions?', 'accountant'],
    ['My landlord wants to evict me, what are my rights?', 'lawyer'],
    ['Why does my tokio program deadlock?', 'coder'],
    ['Recipe for a carbonara sauce', 'chef'],
  ]
  const batch = await index.topKBatch(
    cases.map((c) => c[0]),
    2,
  )
  for (const [i, [query, want]] of cases.entries()) {
    const single = await index.topK(query, 2)
    t.is(single[0].id, want, query)
    t.deepEqual(
      batch[i].map((h) => h.id),
      single.map((h) => h.id),
    )
    t.true(single[0].score > single[1].score)
  }
})

test('concurrent text searches (their scans handed to a second thread while the model is busy) answer as one at a time', async (t) => {
  const embedder = await int8
  const index = SemanticIndex.create({ embedder })
  // Twelve calls at once: each search after the first few finds others waiting for the model, so
  // it runs on the follow-up thread while the model embeds the next query.
  const queries = texts.slice(0, 12)
  await t.throwsAsync(Promise.all(queries.map((q) => index.topK(q, 3))), { code: 'ERR_EMPTY_INDEX' })
  const rejected = await Promise.allSettled(queries.map((q) => index.topK(q, 3)))
  t.deepEqual(
    rejected.map((r) => r.status === 'rejected' && (r.reason as MyriadError).code),
    queries.map(() => 'ERR_EMPTY_INDEX'),
  )
  await index.upsert(
    texts.map((_, i) => `agent-${i}`),
    texts,
  )
  const together = await Promise.all(queries.map((q) => index.topK(q, 3)))
  for (const [i, q] of queries.entries()) t.deepEqual(together[i], await index.topK(q, 3), q)
  // An embedding queued among the searches still comes back whole, and the searches the same.
  const [vectors, ...again] = await Promise.all([embedder.embed([queries[0]]), ...queries.map((q) => index.topK(q, 3))])
  t.deepEqual(vectors, await embedder.embed([queries[0]]))
  t.deepEqual(again, together)
})

test('model and provider problems are typed errors', async (t) => {
  const model = await fp32
  t.is(await codeOf(Embedder.load({ model: 'nobody/no-such-model', offline: true })), 'ERR_MODEL_NOT_FOUND')
  t.is(await codeOf(Embedder.load({ file: 'onnx/absent.onnx', offline: true })), 'ERR_MODEL_NOT_FOUND')
  t.is(await codeOf(Embedder.load({ model: '/definitely/not/a/dir' })), 'ERR_MODEL_NOT_FOUND')
  t.is(await codeOf(Embedder.load({ precision: 'fp16' as 'fp32', offline: true })), 'ERR_INVALID_ARG')
  t.is(await codeOf(Embedder.load({ provider: 'tpu' as 'cpu', offline: true })), 'ERR_INVALID_ARG')
  if (process.platform !== 'darwin') {
    t.is(await codeOf(Embedder.load({ provider: 'coreml', offline: true })), 'ERR_PROVIDER_UNAVAILABLE')
  }
  // onnxruntime-node's package carries no CUDA provider library, so this must fail cleanly.
  t.is(await codeOf(Embedder.load({ provider: 'cuda', offline: true })), 'ERR_PROVIDER_UNAVAILABLE')
  t.is(await codeOf(() => model.embed('not an array' as unknown as string[])), 'ERR_INVALID_ARG')
  t.is(await codeOf(() => model.embed([1 as unknown as string])), 'ERR_INVALID_ARG')
})

test('a plain local directory works as the model source', async (t) => {
  const model = await fp32
  // The resolved file sits in <snapshot>/onnx/model.onnx; the snapshot is a plain directory too.
  const dir = dirname(dirname(model.modelPath))
  const local = await Embedder.load({ model: dir, threads: 1 })
  t.is(local.threads, 1)
  const [a, b] = await Promise.all([local.embed(['local directory']), model.embed(['local directory'])])
  t.true(cosine(a, b) > 0.99999)
})
