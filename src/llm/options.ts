// The LLM client's configuration as zod schemas: the TypeScript types are inferred from them, the
// defaults live here and nowhere else, and docs/reference/options.md is generated from them.
import { z } from 'zod'

const positive = z.number().positive()
const positiveInt = z.number().int().positive()
// A failure rate; above 1 is never reached, which turns the step or the breaker off.
const share = z.number().min(0)

export const BackoffOptionsSchema = z
  .strictObject({
    baseMs: positive.default(250).describe('First retry waits up to this long; doubles per attempt.'),
    maxMs: positive.default(20_000).describe('Ceiling of one computed wait.'),
    maxRetryAfterMs: positive.default(60_000).describe("Ceiling of a server's Retry-After we honour; longer ones fail the call."),
  })
  .describe('When to try again and how long to wait first')

export const BreakerOptionsSchema = z
  .strictObject({
    window: positiveInt.default(100).describe('Attempts remembered.'),
    minRequests: positiveInt.default(20).describe('Attempts needed in the window before it may open.'),
    errorRate: share.default(0.5).describe('Opens when this share of the window failed (network, timeout, 429, 5xx).'),
    p99Ms: positive.default(30_000).describe("Opens when the window's p99 latency is above this (Infinity: off)."),
    cooldownMs: positive.default(5_000).describe('Open this long before letting probes through.'),
    halfOpenProbes: positiveInt.default(3).describe('Probes allowed at once when half-open; this many successes close it.'),
  })
  .describe('A circuit breaker per provider, on error rate and p99 latency over the last attempts')

export const LadderOptionsSchema = z
  .strictObject({
    windowMs: positive.default(10_000).describe('Sliding window over which the failure rate is measured.'),
    minAttempts: positiveInt.default(20).describe('Attempts needed in the window before the failure rate counts.'),
    fallbackModelAt: share.default(0.2).describe("Failure rate from which calls use the provider's `fallbackModel`."),
    skipNonCriticalAt: share.default(0.5).describe('Failure rate from which calls marked `critical: false` are skipped.'),
    recordLimit: positiveInt.default(10_000).describe('Calls kept by `record-only` for `takeRecorded()`; the oldest go first past this.'),
  })
  .describe('The degradation ladder: how much the layer gives up when providers struggle')

export const BudgetOptionsSchema = z
  .strictObject({
    maxPromptTokens: positive.optional().describe('Most prompt tokens a call may send (default: no limit).'),
    charsPerToken: positive.default(4).describe('Characters per token of the estimate (4: English under BPE tokenizers; lower it for code or CJK).'),
    messageOverhead: z.number().min(0).default(4).describe('Tokens each message costs besides its text (role, separators).'),
  })
  .describe('Prompt budget: estimate tokens without a tokenizer and trim the context to fit before sending')

export const AdaptiveOptionsSchema = z
  .strictObject({
    min: positiveInt.default(1).describe('The limit never drops below this.'),
    initial: positiveInt.optional().describe("Where it starts (default: the provider's concurrency, the ceiling): AIMD lowers it on trouble."),
    latencyTolerance: positive.default(3).describe('A window median above this multiple of the baseline is congestion.'),
    backoffRatio: z.number().gt(0).lt(1).default(0.75).describe('Multiplicative decrease on congestion.'),
    baselineSeconds: positive.default(60).describe('How long the baseline remembers a fast window.'),
  })
  .describe('AIMD concurrency limit of a provider')

const isUrl = (value: string) => {
  try {
    new URL(value)
    return true
  } catch {
    return false
  }
}

export const ProviderConfigSchema = z
  .strictObject({
    name: z.string().min(1).describe('The name requests and failover refer to.'),
    baseUrl: z
      .string()
      .refine(isUrl, { error: (issue) => `baseUrl '${String(issue.input)}' is not a URL` })
      .describe('OpenAI-compatible base URL including the version prefix, e.g. `https://api.openai.com/v1`.'),
    apiKey: z.string().optional().describe('The API key itself; prefer `apiKeyEnv`.'),
    apiKeyEnv: z.string().min(1).optional().describe('Environment variable holding the API key (read once, at construction).'),
    models: z.array(z.string().min(1)).min(1, 'a provider lists at least one model').describe('Models this provider serves; the first is its default.'),
    fallbackModel: z.string().min(1).optional().describe("A cheaper model used on the degradation ladder's `fallback-model` step."),
    headers: z.record(z.string(), z.string()).default({}).describe('Extra headers sent with every request (e.g. `OpenAI-Organization`).'),
    prices: z
      .record(z.string(), z.strictObject({ inputPer1M: z.number().min(0), outputPer1M: z.number().min(0) }))
      .default({})
      .describe('Prices per model and 1,000,000 prompt / completion tokens (any currency; metrics().cost is in the same one).'),
    limits: z
      .strictObject({
        concurrency: positiveInt.default(256).describe('Most requests in flight to this provider.'),
        adaptive: z
          .union([z.boolean(), AdaptiveOptionsSchema.partial()])
          .default(true)
          .describe('AIMD between `min` and `concurrency`; false keeps the limit fixed.'),
        requestsPerMinute: positive.optional().describe('A token bucket on requests.'),
        tokensPerMinute: positive.optional().describe('A token bucket on estimated prompt + completion tokens.'),
      })
      .prefault({}),
    pool: z
      .strictObject({
        connections: positiveInt.optional().describe("Sockets to this origin (default: the provider's concurrency)."),
        pipelining: positiveInt
          .default(1)
          .describe(
            'Requests written ahead on one keep-alive socket (1 = no pipelining: LLM latencies vary by seconds, and one slow answer would hold up the rest).',
          ),
        keepAliveTimeoutMs: positive.default(30_000).describe('How long an idle socket is kept.'),
      })
      .prefault({}),
  })
  .describe('One OpenAI-compatible endpoint')

export const LLMConfigSchema = z
  .strictObject({
    providers: z
      .array(ProviderConfigSchema)
      .min(1, 'LLM needs at least one provider')
      .superRefine((providers, ctx) => {
        const seen = new Set<string>()
        for (const [i, p] of providers.entries()) {
          if (seen.has(p.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `two providers are named '${p.name}'` })
          seen.add(p.name)
        }
      })
      .describe('In failover order: a call goes to the first whose breaker lets it through.'),
    concurrency: positiveInt.default(1024).describe('Most calls in flight across all providers.'),
    retries: z.number().int().min(0).default(3).describe('Attempts after the first for retryable failures.'),
    timeoutMs: positive.default(60_000).describe('Whole call, queueing and retries included.'),
    connectTimeoutMs: positive.default(10_000).describe('TCP (and TLS) connect of one socket.'),
    headersTimeoutMs: positive.optional().describe('Time to the response headers of one attempt (default: `timeoutMs`; undici checks it on a ~0.5 s tick).'),
    idleTimeoutMs: positive.default(30_000).describe('Longest silence between body chunks of one attempt (exact for streams, ~0.5 s ticks otherwise).'),
    backoff: BackoffOptionsSchema.prefault({}),
    breaker: BreakerOptionsSchema.prefault({}),
    ladder: LadderOptionsSchema.prefault({}),
    budget: BudgetOptionsSchema.prefault({}),
  })
  .describe('new LLM(config)')

export type LLMConfig = z.input<typeof LLMConfigSchema>
export type ProviderConfig = z.input<typeof ProviderConfigSchema>
/** A provider's configuration with its defaults filled in. */
export type ResolvedProviderConfig = z.output<typeof ProviderConfigSchema>
export type ResolvedLLMConfig = z.output<typeof LLMConfigSchema>
export type BackoffOptions = z.output<typeof BackoffOptionsSchema>
export type BreakerOptions = z.output<typeof BreakerOptionsSchema>
export type LadderOptions = z.output<typeof LadderOptionsSchema>
export type BudgetOptions = z.output<typeof BudgetOptionsSchema>
export type AdaptiveOptions = z.output<typeof AdaptiveOptionsSchema>
export type ModelPrice = ResolvedProviderConfig['prices'][string]
