// Admission of one attempt: the provider's token buckets, then its concurrency slot, then a global one.
import { LLMError } from './errors.js'
import type { Semaphore } from './limits.js'
import type { Provider } from './provider.js'
import type { CallScope } from './scope.js'

/**
 * Token buckets first (waiting there holds no slot), then the provider's slot, then a global one.
 * Returns undefined when admitted at once (the common case, without a promise), else a promise
 * that resolves once both slots are held, or rejects (nothing held) when the call is cancelled or
 * the buckets would make it wait past its deadline.
 */
export function admit(scope: CallScope, provider: Provider, global: Semaphore, estimatedTokens: number): Promise<void> | undefined {
  if (!provider.requestBucket && !provider.tokenBucket && provider.slots.tryAcquire()) {
    if (global.tryAcquire()) return undefined
    return waitGlobal(scope, provider, global)
  }
  return admitSlowly(scope, provider, global, estimatedTokens)
}

async function admitSlowly(scope: CallScope, provider: Provider, global: Semaphore, estimatedTokens: number): Promise<void> {
  if (provider.requestBucket || provider.tokenBucket) {
    const wait = Math.max(provider.requestBucket?.reserve(1) ?? 0, provider.tokenBucket?.reserve(estimatedTokens) ?? 0)
    if (wait > 0) {
      const refund = () => {
        provider.requestBucket?.refund(1)
        provider.tokenBucket?.refund(estimatedTokens)
      }
      if (wait >= scope.remainingMs) {
        refund()
        throw new LLMError('rate_limit', `${provider.name}: its requests/tokens per minute would delay this call ${Math.round(wait)} ms, past its deadline`, {
          provider: provider.name,
        })
      }
      try {
        await scope.sleep(wait)
      } catch (error) {
        refund()
        throw error
      }
    }
  }
  if (!provider.slots.tryAcquire()) {
    const place = provider.slots.acquire()
    await scope.waitFor(place.ready, place.abandon)
  }
  if (!global.tryAcquire()) await waitGlobal(scope, provider, global)
}

/** Waits for a global slot while holding the provider's, which is given back if the wait fails. */
async function waitGlobal(scope: CallScope, provider: Provider, global: Semaphore): Promise<void> {
  const place = global.acquire()
  try {
    await scope.waitFor(place.ready, place.abandon)
  } catch (error) {
    provider.slots.release()
    throw error
  }
}
