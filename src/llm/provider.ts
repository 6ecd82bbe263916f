// One configured provider at run time: its undici pool, request headers, limits and breaker.
import { Pool } from 'undici'

import { MyriadError } from '../errors/index.js'
import { CircuitBreaker } from './breaker.js'
import { AdaptiveLimit, DEFAULT_ADAPTIVE, Semaphore, TokenBucket } from './limits.js'
import type { ProviderMetrics } from './metrics.js'
import type { BreakerOptions, ModelPrice, ResolvedProviderConfig } from './options.js'

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

  constructor(config: ResolvedProviderConfig, breaker: BreakerOptions, timeouts: PoolTimeouts) {
    const apiKey = config.apiKey ?? (config.apiKeyEnv ? process.env[config.apiKeyEnv] : undefined)
    if (config.apiKeyEnv && apiKey === undefined) {
      throw new MyriadError('ERR_LLM_CONFIG', `provider '${config.name}': environment variable ${config.apiKeyEnv} (its API key) is not set`)
    }
    this.name = config.name
    this.models = config.models
    this.fallbackModel = config.fallbackModel
    this.prices = config.prices
    const url = new URL(config.baseUrl)
    this.basePath = url.pathname.replace(/\/+$/, '')
    this.headers = { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}), ...config.headers }
    const { concurrency, adaptive } = config.limits
    this.adaptive = adaptive === false ? undefined : new AdaptiveLimit(concurrency, { ...DEFAULT_ADAPTIVE, ...(adaptive === true ? {} : adaptive) })
    this.slots = new Semaphore(this.adaptive?.limit ?? concurrency)
    this.requestBucket = config.limits.requestsPerMinute ? new TokenBucket(config.limits.requestsPerMinute) : undefined
    this.tokenBucket = config.limits.tokensPerMinute ? new TokenBucket(config.limits.tokensPerMinute) : undefined
    this.breaker = new CircuitBreaker(breaker)
    // One socket per request in flight and no pipelining by default: LLM latencies vary by seconds,
    // and a pipelined request waits behind whatever was written before it on its socket.
    this.pipelined = config.pool.pipelining > 1
    this.pool = new Pool(url.origin, {
      connections: config.pool.connections ?? concurrency,
      pipelining: config.pool.pipelining,
      keepAliveTimeout: config.pool.keepAliveTimeoutMs,
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
