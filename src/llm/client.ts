// `LLM`: the public client. A call goes: ladder check -> prompt budget -> route (breaker, failover)
// -> admission (token buckets, provider and global semaphores) -> HTTP attempt -> retry loop.
import { parseOptions } from '../errors/index.js'
import { admit } from './admission.js'
import { estimatePromptTokens, trimToBudget } from './budget.js'
import { DeadlineQueue } from './deadlines.js'
import { LLMError, asLLMError, isProviderFault } from './errors.js'
import { DegradationLadder, STEPS, type Degradation } from './ladder.js'
import { Semaphore } from './limits.js'
import { MetricsRecorder, type LLMMetrics } from './metrics.js'
import { type BackoffOptions, type BudgetOptions, type LLMConfig, LLMConfigSchema } from './options.js'
import { Provider } from './provider.js'
import { retryDelayMs } from './retry.js'
import { CallScope } from './scope.js'
import { LLMStream, pumpStream } from './stream.js'
import { parseStructured, prepareSchema, repairPrompt, responseFormatFor, type OutputSchema, type PreparedSchema } from './structured.js'
import { postJson, openStream, classify, type AttemptTimeouts } from './transport.js'
import type { CallOptions, ChatMessage, ChatRequest, ChatResult, DegradationStep, StreamRequest, StreamResult, ToolCall } from './types.js'
import { chatBody, readChatReply, readEmbeddings } from './wire.js'

export interface JsonRequest<T> extends ChatRequest {
  schema: OutputSchema<T>
  /** Name sent with `response_format: json_schema` (default `output`). */
  schemaName?: string
  /** How the schema reaches the model (default `json_schema`; `none` for servers without response_format). */
  mode?: 'json_schema' | 'json_object' | 'none'
  /** false: no second round with the validation error (default true). */
  repair?: boolean
}

export interface JsonResult<T> extends ChatResult {
  data: T
  /** The first reply failed validation and the repair round fixed it. */
  repaired: boolean
}

export interface EmbedRequest extends CallOptions {
  input: string | string[]
}

export interface EmbedResult {
  vectors: number[][]
  provider: string
  model: string
  attempts: number
  latencyMs: number
}

export interface RecordedCall {
  kind: 'chat' | 'json' | 'stream' | 'embed'
  /** The request as the caller passed it, to send again later. */
  request: ChatRequest | EmbedRequest
  /** Date.now() when it was recorded. */
  at: number
}

interface Route {
  provider: Provider
  model: string
}

interface Exchanged<R> {
  value: R
  provider: Provider
  model: string
  attempts: number
}

const FALLBACK_MODEL = STEPS.indexOf('fallback-model')
const SKIP_NON_CRITICAL = STEPS.indexOf('skip-non-critical')
const RECORD_ONLY = STEPS.indexOf('record-only')

export class LLM {
  private readonly providers: Provider[]
  private readonly byName = new Map<string, Provider>()
  private readonly global: Semaphore
  private readonly recorder = new MetricsRecorder()
  private readonly deadlines = new DeadlineQueue()
  private readonly ladder: DegradationLadder
  private readonly backoff: BackoffOptions
  private readonly budget: BudgetOptions
  private readonly timeouts: AttemptTimeouts
  private readonly retries: number
  private readonly timeoutMs: number
  private readonly schemas = new WeakMap<object, PreparedSchema<unknown>>()
  private recorded: RecordedCall[] = []
  private readonly recordLimit: number
  private closed = false
  /** Calls started and not settled (close() waits for them before closing the pools). */
  private active = 0
  private onDrained: (() => void) | undefined
  /** Some provider has a tokens-per-minute bucket, which needs an estimate before sending. */
  private readonly tokenLimited: boolean

  constructor(config: LLMConfig) {
    const c = parseOptions(LLMConfigSchema, config, 'LLM config', 'ERR_LLM_CONFIG')
    this.timeoutMs = c.timeoutMs
    this.retries = c.retries
    this.timeouts = { headersTimeoutMs: c.headersTimeoutMs ?? c.timeoutMs, idleTimeoutMs: c.idleTimeoutMs }
    this.backoff = c.backoff
    this.budget = c.budget
    this.recordLimit = c.ladder.recordLimit
    this.global = new Semaphore(c.concurrency)
    this.providers = c.providers.map((p) => new Provider(p, c.breaker, { connectTimeoutMs: c.connectTimeoutMs }))
    for (const p of this.providers) this.byName.set(p.name, p)
    this.tokenLimited = this.providers.some((p) => p.tokenBucket !== undefined)
    this.ladder = new DegradationLadder(
      c.ladder,
      () => this.providers.some((p) => p.breaker.available()),
      () => this.providers[0].breaker.state === 'closed',
    )
  }

  /** One chat completion. */
  chat(request: ChatRequest): Promise<ChatResult> {
    return this.run('chat', request, (scope, level) => this.chatExchange(scope, request, request.messages, level))
  }

  /**
   * A chat completion parsed as JSON and validated against `schema` (zod or JSON Schema). A reply
   * that fails gets one more round with the validation error in the prompt; then ERR_LLM_PARSE.
   */
  json<T>(request: JsonRequest<T>): Promise<JsonResult<T>> {
    return this.run('json', request, async (scope, level) => {
      const { validator, jsonSchema } = this.prepared(request.schema)
      const withFormat: ChatRequest = {
        ...request,
        responseFormat: responseFormatFor(request.mode ?? 'json_schema', request.schemaName ?? 'output', jsonSchema),
      }
      const first = await this.chatExchange(scope, withFormat, request.messages, level)
      const parsed = parseStructured(first.text, validator)
      if (parsed.ok) return { ...first, data: parsed.value, repaired: false }
      if (request.repair === false) throw this.parseError(first, parsed.issues)
      this.recorder.repairs++
      const repairMessages: ChatMessage[] = [...request.messages, first.message, { role: 'user', content: repairPrompt(parsed.issues, jsonSchema) }]
      const second = await this.chatExchange(scope, withFormat, repairMessages, level)
      const reparsed = parseStructured(second.text, validator)
      if (!reparsed.ok) throw this.parseError(second, reparsed.issues)
      return { ...second, attempts: first.attempts + second.attempts, data: reparsed.value, repaired: true }
    })
  }

  /**
   * A streamed chat completion: iterate it for chunks, await `.result` for the whole reply.
   * Failures before the first chunk are retried like `chat`; after it they reject (text already
   * handed out cannot be taken back).
   */
  stream(request: StreamRequest): LLMStream {
    return new LLMStream((stream) => this.run('stream', request, (scope, level) => this.streamExchange(scope, request, stream, level)))
  }

  /** Embeddings for one text or many (`/embeddings`). */
  embed(request: EmbedRequest): Promise<EmbedResult> {
    return this.run('embed', request, async (scope, level) => {
      const input = request.input
      const count = Array.isArray(input) ? input.length : 1
      const estimate = Math.ceil((Array.isArray(input) ? input.join('').length : input.length) / this.budget.charsPerToken)
      const done = await this.exchange(scope, request, estimate, level, (route) =>
        postJson(route.provider, '/embeddings', JSON.stringify({ model: route.model, input }), scope, this.timeouts, route.model, (json) =>
          readEmbeddings(json, count, route.provider.name, route.model),
        ),
      )
      this.countTokens(done.provider, done.model, done.value.promptTokens ?? estimate, 0, estimate)
      return {
        vectors: done.value.vectors,
        provider: done.provider.name,
        model: done.model,
        attempts: done.attempts,
        latencyMs: performance.now() - scope.startedAt,
      }
    })
  }

  metrics(): LLMMetrics {
    const providers: LLMMetrics['providers'] = {}
    for (const p of this.providers) providers[p.name] = p.snapshot()
    return this.recorder.snapshot(providers)
  }

  /** The degradation ladder's step now, and why. */
  degradation(): Degradation {
    return this.ladder.current()
  }

  /** Holds the ladder at a step (an operator's override); null returns it to measuring. */
  degrade(step: DegradationStep | null): void {
    this.ladder.force(step)
  }

  /** Calls the `record-only` step kept instead of sending, oldest first; the list is emptied. */
  takeRecorded(): RecordedCall[] {
    const calls = this.recorded
    this.recorded = []
    return calls
  }

  /** Rejects new calls with ERR_LLM_CLOSED, lets the calls already made finish (queued ones too), closes the sockets. */
  async close(): Promise<void> {
    this.closed = true
    if (this.active > 0) {
      await new Promise<void>((resolve) => {
        this.onDrained = resolve
      })
    }
    await Promise.all(this.providers.map((p) => p.close()))
  }

  /** The frame of every call: metrics, timeout and cancellation, the ladder. Every call settles here. */
  private async run<R>(kind: RecordedCall['kind'], request: ChatRequest | EmbedRequest, body: (scope: CallScope, level: number) => Promise<R>): Promise<R> {
    this.recorder.callStarted(performance.now())
    const scope = new CallScope(request.timeoutMs ?? this.timeoutMs, request.signal, this.deadlines)
    this.active++
    try {
      if (this.closed) throw new LLMError('closed', 'the LLM client is closed')
      scope.check()
      const level = this.ladder.level()
      if (level === RECORD_ONLY) {
        this.keep(kind, request)
        throw new LLMError('skipped', `not sent, recorded: ${this.ladder.current().reason}`, { recorded: true })
      }
      if (level === SKIP_NON_CRITICAL && request.critical === false) {
        throw new LLMError('skipped', `non-critical call skipped: ${this.ladder.current().reason}`)
      }
      const result = await body(scope, level)
      this.recorder.callEnded(performance.now(), scope.startedAt)
      return result
    } catch (error) {
      const failure = asLLMError(error)
      this.recorder.callEnded(performance.now(), scope.startedAt, failure.failure)
      throw failure
    } finally {
      scope.dispose()
      if (--this.active === 0) this.onDrained?.()
    }
  }

  /** One chat completion inside a call (json() makes two). A `.then`, not an async function: one suspended frame less per call in flight. */
  private chatExchange(scope: CallScope, request: ChatRequest, messages: ChatMessage[], level: number): Promise<ChatResult> {
    const { sent, estimate, trimmed } = this.fitBudget(request, messages)
    const reserved = estimate + (request.maxTokens ?? 0)
    const send = (route: Route) =>
      postJson(route.provider, '/chat/completions', chatBody(request, sent, route.model, false), scope, this.timeouts, route.model, (json) =>
        readChatReply(json, route.provider.name, route.model),
      )
    return this.exchange(scope, request, reserved, level, send).then((done) =>
      this.settle(scope, done, done.value.message, done.value.toolCalls, sent, estimate, reserved, trimmed, level),
    )
  }

  private async streamExchange(scope: CallScope, request: StreamRequest, stream: LLMStream, level: number): Promise<StreamResult> {
    const { sent, estimate, trimmed } = this.fitBudget(request, request.messages)
    let emitted = false
    const reserved = estimate + (request.maxTokens ?? 0)
    const done = await this.exchange(
      scope,
      request,
      reserved,
      level,
      async (route) => {
        const body = await openStream(route.provider, '/chat/completions', chatBody(request, sent, route.model, true), scope, this.timeouts, route.model)
        return pumpStream(body, stream, {
          until: request.until,
          idleTimeoutMs: this.timeouts.idleTimeoutMs,
          provider: route.provider.name,
          model: route.model,
          classify: (error) => classify(error, scope, route.provider.name, route.model),
          emitted: () => {
            emitted = true
          },
        })
      },
      () => !emitted,
    )
    const message: ChatMessage = { role: 'assistant', content: done.value.text }
    return { ...this.settle(scope, done, message, [], sent, estimate, reserved, trimmed, level), stoppedEarly: done.value.stoppedEarly }
  }

  /**
   * Counts a finished exchange's tokens (the server's usage where it sent one, else estimates) and
   * builds the result a chat and a stream share. `estimate` is the admission's prompt estimate,
   * 0 when neither a budget nor a tokens-per-minute limit needed one: then the prompt is estimated
   * here, only if the server sent no usage.
   */
  private settle(
    scope: CallScope,
    done: Exchanged<{ text: string; finishReason: string | null; promptTokens?: number; completionTokens?: number }>,
    message: ChatMessage,
    toolCalls: ToolCall[],
    sent: ChatMessage[],
    estimate: number,
    reserved: number,
    trimmed: number,
    level: number,
  ): ChatResult {
    const reply = done.value
    const promptTokens = reply.promptTokens ?? (estimate || estimatePromptTokens(sent, this.budget))
    const completionTokens = reply.completionTokens ?? Math.ceil(reply.text.length / this.budget.charsPerToken)
    this.countTokens(done.provider, done.model, promptTokens, completionTokens, reserved)
    return {
      text: reply.text,
      message,
      toolCalls,
      finishReason: reply.finishReason,
      usage: { promptTokens, completionTokens },
      provider: done.provider.name,
      model: done.model,
      attempts: done.attempts,
      latencyMs: performance.now() - scope.startedAt,
      trimmed,
      degradation: STEPS[level],
    }
  }

  /**
   * The retry loop: route (breaker, failover), admit, send, and on a retryable failure wait
   * (backoff or Retry-After) and go again. Each attempt's outcome feeds the provider's breaker and
   * AIMD limit and the ladder. One function rather than loop + attempt: this runs for every call.
   */
  private async exchange<R>(
    scope: CallScope,
    request: CallOptions,
    estimatedTokens: number,
    level: number,
    send: (route: Route) => Promise<R>,
    mayRetry?: () => boolean,
  ): Promise<Exchanged<R>> {
    const maxRetries = request.retries ?? this.retries
    for (let attempt = 1; ; attempt++) {
      scope.check()
      const route = this.route(request, level)
      const provider = route.provider
      let failure: LLMError
      try {
        const admitting = admit(scope, provider, this.global, estimatedTokens)
        if (admitting) await admitting
      } catch (error) {
        provider.breaker.cancelProbe()
        throw error
      }
      const startedAt = performance.now()
      provider.attempts++
      this.recorder.attemptStarted()
      try {
        const value = await send(route)
        const latency = performance.now() - startedAt
        provider.breaker.record(false, latency)
        provider.sampleLatency(latency, false)
        this.ladder.record(false)
        return { value, provider, model: route.model, attempts: attempt }
      } catch (error) {
        failure = asLLMError(error)
        this.learn(provider, failure, performance.now() - startedAt)
      } finally {
        this.recorder.attemptEnded()
        provider.slots.release()
        this.global.release()
      }
      const delay = scope.reason || (mayRetry && !mayRetry()) ? undefined : retryDelayMs(failure, attempt, maxRetries, this.backoff, scope.remainingMs)
      if (delay === undefined) {
        failure.details.attempts = attempt
        throw failure
      }
      this.recorder.retries++
      await scope.sleep(delay)
    }
  }

  /** What a failed attempt tells the provider's breaker and AIMD limit and the ladder. */
  private learn(provider: Provider, failure: LLMError, latencyMs: number): void {
    if (failure.failure === 'aborted') {
      // The caller gave up: that says nothing about the provider.
      provider.breaker.cancelProbe()
      return
    }
    const fault = isProviderFault(failure.failure)
    if (fault) provider.failures++
    provider.breaker.record(fault, latencyMs)
    provider.sampleLatency(latencyMs, fault)
    this.ladder.record(fault)
  }

  /** The requested (or first) provider if its breaker lets the call through, else the next that does. */
  private route(request: CallOptions, level: number): Route {
    const first = request.provider === undefined ? this.providers[0] : this.byName.get(request.provider)
    if (!first) throw new LLMError('request', `no provider named '${request.provider}'`)
    if (first.breaker.allow()) return { provider: first, model: this.modelFor(first, first, request, level) }
    if (request.failover !== false) {
      for (const p of this.providers) {
        if (p !== first && p.breaker.allow()) {
          this.recorder.failovers++
          return { provider: p, model: this.modelFor(p, first, request, level) }
        }
      }
    }
    throw new LLMError('circuit_open', `circuit open for ${request.failover === false ? first.name : 'every provider'}`, { provider: first.name })
  }

  /** The requested model where the provider serves it; its default elsewhere; its cheaper model when the ladder says so. */
  private modelFor(provider: Provider, first: Provider, request: CallOptions, level: number): string {
    if (level >= FALLBACK_MODEL && provider.fallbackModel) return provider.fallbackModel
    if (request.model && (provider === first || provider.models.includes(request.model))) return request.model
    return provider.models[0]
  }

  private fitBudget(request: CallOptions, messages: ChatMessage[]): { sent: ChatMessage[]; estimate: number; trimmed: number } {
    const budget = request.maxPromptTokens === false ? Infinity : (request.maxPromptTokens ?? this.budget.maxPromptTokens ?? Infinity)
    if (budget === Infinity) return { sent: messages, estimate: this.tokenLimited ? estimatePromptTokens(messages, this.budget) : 0, trimmed: 0 }
    const fitted = trimToBudget(messages, budget, this.budget)
    this.recorder.trimmedMessages += fitted.trimmed
    return { sent: fitted.messages, estimate: fitted.tokens, trimmed: fitted.trimmed }
  }

  private countTokens(provider: Provider, model: string, promptTokens: number, completionTokens: number, reserved: number): void {
    this.recorder.tokensIn += promptTokens
    this.recorder.tokensOut += completionTokens
    this.recorder.cost += provider.costOf(model, promptTokens, completionTokens)
    // The tokens bucket took an estimate before sending; settle it against what was used.
    provider.tokenBucket?.refund(reserved - promptTokens - completionTokens)
  }

  private prepared<T>(schema: OutputSchema<T>): PreparedSchema<T> {
    let prepared = this.schemas.get(schema)
    if (!prepared) {
      prepared = prepareSchema(schema)
      this.schemas.set(schema, prepared)
    }
    return prepared as PreparedSchema<T>
  }

  private parseError(reply: ChatResult, issues: string): LLMError {
    return new LLMError('parse', `the reply does not match the schema: ${issues}`, { provider: reply.provider, model: reply.model, raw: reply.text, issues })
  }

  private keep(kind: RecordedCall['kind'], request: RecordedCall['request']) {
    if (this.recorded.length >= this.recordLimit) this.recorded.shift()
    this.recorded.push({ kind, request, at: Date.now() })
    this.recorder.recorded++
  }
}
