// The experiment's LLM client as a turn sees it (`ctx.llm`): every call is tagged with the agent,
// the tick and its index among that agent's calls in the tick, checked against the per-agent
// budget, and recorded in `llm_calls` (request, response, tokens, latency, outcome). Cohorts share
// one call per tick: a million agents need not mean a million calls.
import type { AgentLLM } from '../agents/index.js'
import { MyriadError } from '../errors/index.js'
import { type ChatRequest, type ChatResult, type JsonRequest, type JsonResult, type LLM, LLMError } from '../llm/index.js'
import { hash32 } from './random.js'
import type { Recorder } from './recording.js'
import { type Replay, mismatch } from './replay.js'

export interface AgentBudget {
  /** Calls one agent may make in one tick (cohort calls are free). */
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

/** The `agent_id` of a cohort's calls in `llm_calls`: `@cohort:<key>` (no agent id starts with `@`). */
export const COHORT = '@cohort:'

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
    /** Answers calls from an earlier run's records; a miss goes to `llm` when `live`, else fails. */
    private readonly replay?: { from: Replay; live: boolean },
  ) {
    this.tokensSpent = budget.tokens === undefined ? undefined : new Float64Array(agents)
  }

  /** What a checkpoint keeps: the run's totals and the tokens each agent has spent. */
  snapshot(): { totals: { calls: number; cohortHits: number }; tokensSpent: Float64Array | undefined } {
    return { totals: { ...this.totals }, tokensSpent: this.tokensSpent?.slice() }
  }

  restore(s: { totals: { calls: number; cohortHits: number }; tokensSpent: Float64Array | undefined }): void {
    Object.assign(this.totals, s.totals)
    if (this.tokensSpent && s.tokensSpent) this.tokensSpent.set(s.tokensSpent)
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
    if (!client && !this.replay) throw new MyriadError('ERR_LLM_NO_PROVIDER', `agent ${site.agent} called the LLM, but the experiment has no llm configured`)
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
    // A cohort's call is the cohort's, not its first caller's (which agent asks first depends on
    // timing): it is recorded as `@cohort:<key>`, call 0, and charged to no agent's budget, so
    // the agents' own call indices, and the records, do not depend on who came first.
    const caller = cohort === undefined ? site.agent : `${COHORT}${cohort}`
    const index = cohort === undefined ? site.calls++ : 0
    if (cohort === undefined && this.budget.callsPerTick !== undefined && index >= this.budget.callsPerTick) {
      throw new LLMError('budget', `agent ${site.agent} made more than ${this.budget.callsPerTick} LLM calls in tick ${site.tick}`)
    }
    if (cohort === undefined && this.tokensSpent && (this.tokensSpent[site.slot] ?? 0) >= (this.budget.tokens ?? Infinity)) {
      throw new LLMError('budget', `agent ${site.agent} spent its budget of ${this.budget.tokens} tokens`)
    }
    const started = performance.now()
    const hash = requestHash(kind, request)
    let pending: Promise<ChatResult>
    let replayMiss = false
    const replayed = this.replay?.from.answer(caller, site.tick, index, kind, request, hash)
    if (replayed && 'result' in replayed) pending = Promise.resolve(replayed.result)
    else if (replayed && 'error' in replayed) pending = Promise.reject(replayed.error)
    else if (replayed && !(this.replay?.live && client)) pending = Promise.reject(mismatch(replayed.miss))
    else {
      // Live: no replay, or a miss with onMiss 'live' (recorded as such).
      replayMiss = replayed !== undefined
      if (replayMiss && this.replay) this.replay.from.stats.live++
      const tagged = { ...request, signal: request.signal ?? site.signal }
      pending = kind === 'json' ? (client as LLM).json(tagged as JsonRequest<unknown>) : (client as LLM).chat(tagged)
    }
    const recorded = pending.then(
      (result) => {
        this.finish(site, caller, index, kind, request, hash, replayMiss, result, undefined, performance.now() - started, cohort)
        return result
      },
      (error: unknown) => {
        this.finish(site, caller, index, kind, request, hash, replayMiss, undefined, error, performance.now() - started, cohort)
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
    caller: string,
    index: number,
    kind: Call,
    request: ChatRequest,
    hash: string,
    /** A replay's miss sent to the live provider: its row says so. */
    replayMiss: boolean,
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
    if (this.tokensSpent && cohort === undefined) this.tokensSpent[site.slot] += tokens
    const { signal: _signal, schema: _schema, ...sent } = request as JsonRequest<unknown>
    this.recorder.add('llm_calls', {
      exp_id: this.recorder.exp,
      agent_id: caller,
      tick: site.tick,
      call_index: index,
      ts: site.ts,
      model: result?.model ?? request.model ?? null,
      request_hash: hash,
      request: { kind, cohort: cohort ?? null, ...(replayMiss ? { replay: 'live' } : {}), ...sent },
      // What a replay answers with: the reply, or the failure's message (its code is `outcome`).
      response: result
        ? {
            text: result.text,
            finishReason: result.finishReason,
            toolCalls: result.toolCalls,
            provider: result.provider,
            ...('repaired' in result ? { repaired: result.repaired } : {}),
          }
        : { error: error instanceof Error ? error.message : String(error) },
      prompt_tokens: result?.usage.promptTokens ?? null,
      completion_tokens: result?.usage.completionTokens ?? null,
      latency_ms: latencyMs,
      outcome: error === undefined ? 'ok' : error instanceof MyriadError ? error.code : 'ERR_INTERNAL',
    })
  }
}
