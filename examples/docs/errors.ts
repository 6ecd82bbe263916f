import assert from 'node:assert/strict'

import { LLM, LLMError, MyriadError, SemanticIndex } from '@myriad-agents/core'

const index = SemanticIndex.create({ dim: 3 })

// Every error thrown or rejected is a MyriadError whose `code` is stable: branch on it.
try {
  await index.topK([1, 0, 0], 1)
  assert.fail('an empty index has nothing to search')
} catch (error) {
  if (!(error instanceof MyriadError)) throw error
  assert.equal(error.code, 'ERR_EMPTY_INDEX')
  assert.doesNotMatch(error.message, /^ERR_/) // the message is for people; the code for programs
}

await index.upsert(['a'], new Float32Array([1, 0, 0]))
await assert.rejects(index.topK([1, 0, 0, 0], 1), { code: 'ERR_DIMENSION' }) // 4 floats, 3-dim index
await assert.rejects(index.topK([1, 0, 0], 0), { code: 'ERR_INVALID_ARG' })
await assert.rejects(index.remove(['nobody']), { code: 'ERR_UNKNOWN_ID' }) // nothing is removed
assert.equal(index.size, 1)

// A configuration mistake is thrown by the constructor, never by a call.
assert.throws(() => new LLM({ providers: [] }), { code: 'ERR_LLM_CONFIG' })

// LLM calls reject with an LLMError: a MyriadError that also says which class of failure it was.
const llm = new LLM({ providers: [{ name: 'nowhere', baseUrl: 'http://127.0.0.1:1/v1', models: ['m'] }], retries: 0 })
const failed = await llm.chat({ messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)
assert.ok(failed instanceof LLMError && failed instanceof MyriadError)
assert.equal(failed.code, 'ERR_LLM_NETWORK')
assert.equal(failed.failure, 'network') // the key of llm.metrics().failures
assert.equal(failed.details.provider, 'nowhere')
await llm.close()
