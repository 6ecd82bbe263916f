import assert from 'node:assert/strict'

import { Embedder, SemanticIndex } from '@myriad-agents/core'

const embedder = await Embedder.load() // all-MiniLM-L6-v2, fp32, from the Hugging Face cache
const index = SemanticIndex.create({ embedder }) // dim 384, f32 storage, exact cosine top-k

await index.upsert(
  ['accountant', 'lawyer', 'rust-dev'],
  [
    'Certified accountant: personal income tax, deductions, bookkeeping',
    'Lawyer for tenancy disputes, rental contracts and evictions',
    'Senior Rust engineer: async runtimes, performance tuning',
  ],
)

const [best] = await index.topK('How do I claim deductions on my tax return?', 1)
assert.equal(best.id, 'accountant')
console.log(best) // { id: 'accountant', score: 0.488… }
