// The experiment's LLM client as a turn sees it (`ctx.llm`): every call is tagged with the agent,
// the tick and its index among that agent's calls in the tick, checked against the per-agent
// budget, and recorded in `llm_calls` (request, response, tokens, latency, outcome). Cohorts share
// one call per tick: a million agents need not mean a million calls.
import type { AgentLLM } from '../agents/index.js'
import { MyriadError } from '../errors/index.js'
import { type ChatRequest, type ChatResult, type JsonRequest, type JsonResult, type LLM, LLMError } from '../llm/index.js'
import { hash32 } from './random.js'
import type { Recorder } from './recording.js'

export interface AgentBudget {
  /** Calls one agent may make in one tick (cohort hits are free). */
  callsPerTick?: number
  /** Prompt + completion tokens one agent may spend over the whole run. */
  tokens?: number
}

/** Latencies and counts of the tick's calls, for the tick's metrics. */
export class CallStats {
  calls = 0
  failed = 0
  cohortHits = 0
  latencies: number[] = []

  reset(): void {
    this.calls = 0
    this.failed = 0
    this.cohortHits = 0
    this.latencies = []
  }

  percentile(p: number): number {
    if (this.latencies.length === 0) return 0
    const sorted = [...this.latencies].sort((a, b) => a - b)
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
  }
}

/** One turn's tagging: who calls, in which tick, how many calls so far. */
export interface CallSite {
  agent: string
  slot: number
  tick: number
  ts: number
  calls: number
  readonly signal: AbortSignal
}

type Call = 'chat' | 'json'

/** SHA-free request fingerprint (two FNV-1a words over the JSON), enough to check a replay's match. */
export function requestHash(kind: Call, request: ChatRequest): string {
  const text = JSON.stringify([
    kind,
    request.model ?? null,
    request.messages,
    request.temperature ?? null,
    request.responseFormat ?? null,
    request.tools ?? null,
  ])
  return `${hash32(text).toString(16).padStart(8, '0')}${hash32(text, 0x9747b28c).toString(16).padStart(8, '0')}`
}

export class AgentLLMs {
  /** This tick's calls (reset per tick). */
  readonly stats = new CallStats()
  /** The whole run's. */
  readonly totals = { calls: 0, cohortHits: 0 }
  private cohorts = new Map<string, Promise<unknown>>()
  private cohortTick = -1
  private readonly tokensSpent: Float64Array | undefined

  constructor(
    private llm: LLM | undefined,
    private readonly recorder: Recorder,
    private readonly budget: AgentBudget,
    agents: number,
  ) {
    this.tokensSpent = budget.tokens === undefined ? undefined : new Float64Array(agents)
  }

  /** Calls from now on go to `llm` (an intervention's `world.setLLM`). */
  replace(llm: LLM): void {
    this.llm = llm
  }

  /** The `ctx.llm` of one turn. */
  forTurn(site: CallSite): AgentLLM {
    const llm: AgentLLM = {
      chat: (request) => this.call(site, 'chat', request, undefined) as Promise<ChatResult>,
      json: <T>(request: JsonRequest<T>) => this.call(site, 'json', request, undefined) as Promise<JsonResult<T>>,
      cohort: (key) => ({
        chat: (request) => this.call(site, 'chat', request, key) as Promise<ChatResult>,
        json: <T>(request: JsonRequest<T>) => this.call(site, 'json', request, key) as Promise<JsonResult<T>>,
      }),
    }
    return llm
  }

  private call(site: CallSite, kind: Call, request: ChatRequest, cohort: string | undefined): Promise<unknown> {
    const client = this.llm
    // Refusals before any I/O throw in the turn, awaited or not (see TurnContext.own).
    if (!client) throw new MyriadError('ERR_LLM_NO_PROVIDER', `agent ${site.agent} called the LLM, but the experiment has no llm configured`)
    if (cohort !== undefined) {
      if (this.cohortTick !== site.tick) {
        this.cohorts = new Map()
        this.cohortTick = site.tick
      }
      const shared = this.cohorts.get(cohort)
      if (shared) {
        this.stats.cohortHits++
        this.totals.cohortHits++
        return shared
      }
    }
    const index = site.calls++
    if (this.budget.callsPerTick !== undefined && index >= this.budget.callsPerTick) {
      throw new LLMError('budget', `agent ${site.agent} made more than ${this.budget.callsPerTick} LLM calls in tick ${site.tick}`)
    }
    if (this.tokensSpent && (this.tokensSpent[site.slot] ?? 0) >= (this.budget.tokens ?? Infinity)) {
      throw new LLMError('budget', `agent ${site.agent} spent its budget of ${this.budget.tokens} tokens`)
    }
    const tagged = { ...request, signal: request.signal ?? site.signal }
    const started = performance.now()
    const pending = kind === 'json' ? client.json(tagged as JsonRequest<unknown>) : client.chat(tagged)
    const recorded = pending.then(
      (result) => {
        this.finish(site, index, kind, request, result, undefined, performance.now() - started, cohort)
        return result
      },
      (error: unknown) => {
        this.finish(site, index, kind, request, undefined, error, performance.now() - started, cohort)
        throw error
      },
    )
    if (cohort !== undefined) {
      this.cohorts.set(cohort, recorded)
      // The agents that share the answer handle a failure themselves; this copy is only held.
      recorded.catch(() => {})
    }
    return recorded
  }

  private finish(
    site: CallSite,
    index: number,
    kind: Call,
    request: ChatRequest,
    result: ChatResult | undefined,
    error: unknown,
    latencyMs: number,
    cohort?: string,
  ): void {
    this.stats.calls++
    this.totals.calls++
    this.stats.latencies.push(latencyMs)
    if (error !== undefined) this.stats.failed++
    const tokens = result ? result.usage.promptTokens + result.usage.completionTokens : 0
    if (this.tokensSpent) this.tokensSpent[site.slot] += tokens
    const { signal: _signal, schema: _schema, ...sent } = request as JsonRequest<unknown>
    this.recorder.add('llm_calls', {
      exp_id: this.recorder.exp,
      agent_id: site.agent,
      tick: site.tick,
      call_index: index,
      ts: site.ts,
      model: result?.model ?? request.model ?? null,
      request_hash: requestHash(kind, request),
      request: { kind, cohort: cohort ?? null, ...sent },
      response: result ? { text: result.text, finishReason: result.finishReason, toolCalls: result.toolCalls, provider: result.provider } : null,
      prompt_tokens: result?.usage.promptTokens ?? null,
      completion_tokens: result?.usage.completionTokens ?? null,
      latency_ms: latencyMs,
      outcome: error === undefined ? 'ok' : error instanceof MyriadError ? error.code : 'ERR_INTERNAL',
    })
  }
}
