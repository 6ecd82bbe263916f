// One configured provider at run time: its undici pool, request headers, limits and breaker.
import { Pool } from 'undici'

import { MyriadError } from '../errors.js'
import { CircuitBreaker, type BreakerOptions } from './breaker.js'
import { AdaptiveLimit, DEFAULT_ADAPTIVE, Semaphore, TokenBucket } from './limits.js'
import type { ProviderMetrics } from './metrics.js'
import type { ModelPrice, ProviderConfig } from './types.js'

export const DEFAULT_PROVIDER_CONCURRENCY = 256

export interface PoolTimeouts {
  connectTimeoutMs: number
}

export class Provider {
  readonly name: string
  readonly models: string[]
  readonly fallbackModel: string | undefined
  readonly pool: Pool
  /** Path prefix of the base URL (`/v1`), joined with `/chat/completions` etc. */
  readonly basePath: string
  readonly headers: Record<string, string>
  /** More than one request per socket: POSTs must then be marked idempotent and non-blocking. */
  readonly pipelined: boolean
  readonly slots: Semaphore
  readonly adaptive: AdaptiveLimit | undefined
  readonly requestBucket: TokenBucket | undefined
  readonly tokenBucket: TokenBucket | undefined
  readonly breaker: CircuitBreaker
  private readonly prices: Record<string, ModelPrice>
  attempts = 0
  failures = 0

  constructor(config: ProviderConfig, breaker: BreakerOptions, timeouts: PoolTimeouts) {
    if (!config.name) throw configError('a provider needs a name')
    if (!config.models?.length) throw configError(`provider '${config.name}' lists no models`)
    let url: URL
    try {
      url = new URL(config.baseUrl)
    } catch (cause) {
      throw configError(`provider '${config.name}': baseUrl '${config.baseUrl}' is not a URL`, cause)
    }
    const apiKey = config.apiKey ?? (config.apiKeyEnv ? process.env[config.apiKeyEnv] : undefined)
    if (config.apiKeyEnv && apiKey === undefined)
      throw configError(`provider '${config.name}': environment variable ${config.apiKeyEnv} (its API key) is not set`)
    this.name = config.name
    this.models = config.models
    this.fallbackModel = config.fallbackModel
    this.prices = config.prices ?? {}
    this.basePath = url.pathname.replace(/\/+$/, '')
    this.headers = { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}), ...config.headers }
    const concurrency = config.limits?.concurrency ?? DEFAULT_PROVIDER_CONCURRENCY
    const adaptive = config.limits?.adaptive ?? true
    this.adaptive = adaptive === false ? undefined : new AdaptiveLimit(concurrency, { ...DEFAULT_ADAPTIVE, ...(adaptive === true ? {} : adaptive) })
    this.slots = new Semaphore(this.adaptive?.limit ?? concurrency)
    this.requestBucket = config.limits?.requestsPerMinute ? new TokenBucket(config.limits.requestsPerMinute) : undefined
    this.tokenBucket = config.limits?.tokensPerMinute ? new TokenBucket(config.limits.tokensPerMinute) : undefined
    this.breaker = new CircuitBreaker(breaker)
    // One socket per request in flight and no pipelining by default: LLM latencies vary by seconds,
    // and a pipelined request waits behind whatever was written before it on its socket.
    this.pipelined = (config.pool?.pipelining ?? 1) > 1
    this.pool = new Pool(url.origin, {
      connections: config.pool?.connections ?? concurrency,
      pipelining: config.pool?.pipelining ?? 1,
      keepAliveTimeout: config.pool?.keepAliveTimeoutMs ?? 30_000,
      connect: { timeout: timeouts.connectTimeoutMs },
    })
  }

  /** Feeds AIMD with a finished attempt and applies the new limit to the semaphore. */
  sampleLatency(latencyMs: number, overloaded: boolean): void {
    if (!this.adaptive) return
    this.adaptive.sample(latencyMs, overloaded, this.slots.inflight)
    if (this.slots.limit !== this.adaptive.limit) {
      this.slots.limit = this.adaptive.limit
      this.slots.admit()
    }
  }

  costOf(model: string, promptTokens: number, completionTokens: number): number {
    const price = this.prices[model]
    return price ? (promptTokens * price.inputPer1M + completionTokens * price.outputPer1M) / 1e6 : 0
  }

  snapshot(): ProviderMetrics {
    const b = this.breaker.snapshot()
    return {
      inflight: this.slots.inflight,
      limit: this.slots.limit,
      queued: this.slots.waiting,
      breaker: b.state,
      breakerOpens: b.opens,
      attempts: this.attempts,
      failures: this.failures,
    }
  }

  close(): Promise<void> {
    return this.pool.close()
  }
}

/** A configuration mistake: thrown by the constructor, never by a call. */
export function configError(message: string, cause?: unknown): MyriadError {
  return new MyriadError('ERR_LLM_CONFIG', message, { cause })
}
