import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Embedder, SemanticIndex, simdKernels } from '@myriad-agents/core'

const embedder = await Embedder.load() // or { precision: 'int8', threads: 1 }
const index = SemanticIndex.create({ embedder }) // or { storage: 'f16' }: half the memory

const added = await index.upsert(
  ['accountant', 'lawyer', 'rust-dev'],
  [
    'Certified accountant: personal income tax, deductions, bookkeeping',
    'Lawyer for tenancy disputes, rental contracts and evictions',
    'Senior Rust engineer: async runtimes, performance tuning',
  ],
)
assert.equal(added.inserted, 3)

const best = await index.topK('How do I claim deductions on my tax return?', 2)
assert.equal(best[0].id, 'accountant') // best first, with its cosine score

// Vectors work too (any dim), and batches of queries go in one call:
const vectors = await embedder.embed(['tax deductions', 'my landlord wants me out']) // 2 x 384 floats
assert.equal(vectors.length, 2 * embedder.dim)
const perQuery = await index.topKBatch(vectors, 1)
assert.deepEqual(
  perQuery.map((hits) => hits[0].id),
  ['accountant', 'lawyer'],
)

const path = join(await mkdtemp(join(tmpdir(), 'myriad-index-')), 'agents.idx')
await index.save(path) // atomic: a temporary file, then a rename
const again = await SemanticIndex.load(path, { embedder })
assert.equal(again.size, 3)
assert.equal(await again.has('lawyer'), true)
console.log(`scan kernels on this CPU: ${simdKernels()}`) // e.g. avx2+fma+f16c
