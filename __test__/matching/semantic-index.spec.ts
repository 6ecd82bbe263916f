import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { MyriadError, SemanticIndex } from '../../src/index.js'
import { bruteForceTopK, mulberry32, randomVectors } from '../helpers.js'

const uuid = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`

test('topK and topKBatch equal a plain JS brute force on random data (f32, serial and parallel)', async (t) => {
  const rand = mulberry32(42)
  const [n, dim, k] = [4000, 384, 8]
  const rows = randomVectors(rand, n, dim)
  const ids = Array.from({ length: n }, (_, i) => uuid(i))
  const queries = randomVectors(rand, 12, dim)
  for (const opts of [{ threads: 1 }, { threads: 2, parallelThreshold: 1 }]) {
    const index = SemanticIndex.create({ dim, ...opts })
    t.deepEqual(await index.upsert(ids, rows), { inserted: n, updated: 0 })
    t.is(index.size, n)
    const batch = await index.topKBatch(queries, k)
    t.is(batch.length, 12)
    for (let q = 0; q < 12; q++) {
      const query = queries.subarray(q * dim, (q + 1) * dim)
      const want = bruteForceTopK(rows, ids, query, k)
      const single = await index.topK(query, k)
      for (const got of [batch[q], single]) {
        t.deepEqual(
          got.map((h) => h.id),
          want.map((h) => h.id),
        )
        got.forEach((h, i) => t.true(Math.abs(h.score - want[i].score) < 1e-5))
      }
    }
  }
})

// A search over at most 1,024 query-by-vector pairs runs on the JS thread (cheaper than a trip to
// a worker); a larger one on a worker. Both must give the brute force's answer.
test('small searches and has() (on the JS thread) and large searches (on a worker) give the right answers', async (t) => {
  const rand = mulberry32(7)
  const [n, dim, k] = [300, 384, 5]
  const rows = randomVectors(rand, n, dim)
  const ids = Array.from({ length: n }, (_, i) => uuid(i))
  const index = SemanticIndex.create({ dim })
  await index.upsert(ids, rows)
  for (const count of [1, 3, 8]) {
    const queries = randomVectors(rand, count, dim)
    const batch = await index.topKBatch(queries, k)
    for (let q = 0; q < count; q++) {
      const want = bruteForceTopK(rows, ids, queries.subarray(q * dim, (q + 1) * dim), k)
      t.deepEqual(
        batch[q].map((h) => h.id),
        want.map((h) => h.id),
        `${count} queries, query ${q}`,
      )
      batch[q].forEach((h, i) => t.true(Math.abs(h.score - want[i].score) < 1e-5))
    }
  }
  t.true(await index.has(ids[7]))
  t.false(await index.has('ghost'))
  t.is((await t.throwsAsync(index.has(42 as unknown as string), { instanceOf: MyriadError }))?.code, 'ERR_INVALID_ARG')
  // Errors of a small search still come as a rejected promise, as a large one's do.
  const wrong = index.topKBatch(new Float32Array(dim + 1), k)
  t.true(wrong instanceof Promise)
  t.is((await t.throwsAsync(wrong, { instanceOf: MyriadError }))?.code, 'ERR_DIMENSION')
})

test('f16 storage returns near-exact scores', async (t) => {
  const rand = mulberry32(5)
  const [n, dim] = [1500, 384]
  const rows = randomVectors(rand, n, dim)
  const ids = Array.from({ length: n }, (_, i) => `agent-${i}`)
  const index = SemanticIndex.create({ dim, storage: 'f16' })
  t.is(index.storage, 'f16')
  await index.upsert(ids, rows)
  const query = randomVectors(rand, 1, dim)
  const exact = new Map(bruteForceTopK(rows, ids, query, n).map((h) => [h.id, h.score]))
  const hits = await index.topK(query, 5)
  t.is(hits.length, 5)
  for (const h of hits) t.true(Math.abs(h.score - exact.get(h.id)!) < 2e-3, `${h.id}: ${h.score}`)
  t.true(
    hits.every((h, i) => i === 0 || hits[i - 1].score >= h.score),
    'best first',
  )
})

test('bad input gets typed errors, never a crash', async (t) => {
  const index = SemanticIndex.create({ dim: 4 })
  const code = async (p: () => unknown) => {
    const e = await t.throwsAsync(async () => p(), { instanceOf: MyriadError })
    return e?.code
  }
  t.is(await code(() => index.topK([1, 0, 0, 0], 3)), 'ERR_EMPTY_INDEX')
  await index.upsert(['a', 'b'], [1, 0, 0, 0, 0, 1, 0, 0])
  t.is(await code(() => index.upsert(['c'], [1, 2, 3])), 'ERR_DIMENSION')
  t.is(await code(() => index.upsert(['c', 'd'], [1, 0, 0, 0, NaN, 0, 0, 0])), 'ERR_NOT_FINITE')
  t.is(await code(() => index.upsert(['c'], [Infinity, 0, 0, 0])), 'ERR_NOT_FINITE')
  t.is(await code(() => index.upsert(['c'], [0, 0, 0, 0])), 'ERR_ZERO_VECTOR')
  t.is(await code(() => index.upsert([''], [1, 0, 0, 0])), 'ERR_INVALID_ARG')
  t.is(await code(() => index.upsert([42 as unknown as string], [1, 0, 0, 0])), 'ERR_INVALID_ARG')
  t.is(await code(() => index.upsert(['c'], 'nope' as unknown as number[])), 'ERR_INVALID_ARG')
  t.is(index.size, 2, 'rejected batches insert nothing')
  t.is(await code(() => index.topK([1, 0, 0], 1)), 'ERR_DIMENSION')
  t.is(await code(() => index.topKBatch(new Float32Array(7), 1)), 'ERR_DIMENSION')
  t.is(await code(() => index.topK([1, 0, NaN, 0], 1)), 'ERR_NOT_FINITE')
  for (const k of [0, -1, 1.5, NaN]) t.is(await code(() => index.topK([1, 0, 0, 0], k)), 'ERR_INVALID_ARG')
  t.is(await code(() => index.remove(['a', 'ghost'])), 'ERR_UNKNOWN_ID')
  t.true(await index.has('a'), 'a failed remove removes nothing')
  t.is(await code(() => index.get('ghost')), 'ERR_UNKNOWN_ID')
  t.is(await code(() => index.upsert(['x'], ['some text'])), 'ERR_NO_EMBEDDER')
  t.is(await code(() => index.topK('some text', 1)), 'ERR_NO_EMBEDDER')
  t.is(await code(() => SemanticIndex.create({ dim: 0 })), 'ERR_INVALID_ARG')
  t.is(await code(() => SemanticIndex.create({ storage: 'f8' as 'f16' })), 'ERR_INVALID_ARG')
  t.deepEqual(
    (await index.topK([1, 0, 0, 0], 10)).map((h) => h.id),
    ['a', 'b'],
    'k beyond size returns all',
  )
})

test('remove keeps the matrix dense and every other agent findable', async (t) => {
  const rand = mulberry32(9)
  const [n, dim] = [300, 32]
  const rows = randomVectors(rand, n, dim)
  const ids = Array.from({ length: n }, (_, i) => uuid(i))
  const index = SemanticIndex.create({ dim })
  await index.upsert(ids, rows)
  const gone = ids.filter((_, i) => i % 3 === 0)
  t.is(await index.remove(gone), gone.length)
  t.is(index.size, n - gone.length)
  // Every remaining agent is its own best match, with its own vector.
  const kept = ids.map((id, i) => ({ id, i })).filter(({ i }) => i % 3 !== 0)
  const queries = new Float32Array(kept.length * dim)
  kept.forEach(({ i }, r) => queries.set(rows.subarray(i * dim, (i + 1) * dim), r * dim))
  const hits = await index.topKBatch(queries, 1)
  t.deepEqual(
    hits.map((h) => h[0].id),
    kept.map(({ id }) => id),
  )
  t.true(hits.every((h) => Math.abs(h[0].score - 1) < 1e-5))
})

test('save and load round-trip; corrupt files are rejected', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-index-'))
  const rand = mulberry32(11)
  const rows = randomVectors(rand, 200, 64)
  const ids = Array.from({ length: 200 }, (_, i) => uuid(i))
  const query = randomVectors(rand, 1, 64)
  for (const storage of ['f32', 'f16'] as const) {
    const index = SemanticIndex.create({ dim: 64, storage })
    await index.upsert(ids, rows)
    const path = join(dir, `${storage}.idx`)
    await index.save(path)
    const back = await SemanticIndex.load(path)
    t.is(back.size, 200)
    t.is(back.dim, 64)
    t.is(back.storage, storage)
    t.deepEqual(await back.topK(query, 5), await index.topK(query, 5))
  }
  const bytes = readFileSync(join(dir, 'f32.idx'))
  writeFileSync(join(dir, 'cut.idx'), bytes.subarray(0, bytes.length - 3))
  const cut = await t.throwsAsync(SemanticIndex.load(join(dir, 'cut.idx')), { instanceOf: MyriadError })
  t.is(cut?.code, 'ERR_CORRUPT_INDEX')
  const absent = await t.throwsAsync(SemanticIndex.load(join(dir, 'absent.idx')), { instanceOf: MyriadError })
  t.is(absent?.code, 'ERR_IO')
})

test('concurrent searches and upserts from many callers stay consistent', async (t) => {
  const rand = mulberry32(13)
  const dim = 64
  const index = SemanticIndex.create({ dim, threads: 2, parallelThreshold: 1 })
  const base = randomVectors(rand, 1000, dim)
  await index.upsert(
    Array.from({ length: 1000 }, (_, i) => `base-${i}`),
    base,
  )
  const work: Promise<unknown>[] = []
  for (let w = 0; w < 20; w++) {
    const batch = randomVectors(rand, 50, dim)
    work.push(
      index.upsert(
        Array.from({ length: 50 }, (_, i) => `w${w}-${i}`),
        batch,
      ),
    )
    const q = base.subarray(w * dim, (w + 1) * dim)
    work.push(index.topK(q, 1).then((hits) => t.is(hits[0].id, `base-${w}`)))
  }
  await Promise.all(work)
  t.is(index.size, 2000)
})
