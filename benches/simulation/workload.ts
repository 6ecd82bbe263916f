// The `simulation` suite's workload, shared by its three implementations (the runtime, the
// hand-wired floor over the same components, plain JavaScript): per agent per tick, read the
// inbox, update the state, send one message to a random agent; `llmShare` of the agents call the
// LLM (the test server at 100 ms), `helperShare` look for helpers; everything is recorded.
import { makeProfiles } from '../profiles.js'

export interface Config {
  n: number
  ticks: number
  workload: 'mixed' | 'llm-every-turn'
  peer: 'runtime' | 'floor' | 'plain'
  llmUrl: string
  /** LLM calls in flight at once. */
  concurrency: number
  dir: string
}

export interface Result {
  setup_s: number
  tick_ms: number[]
  turns: number
  sent: number
  delivered: number
  lost: number
  errors: number
  llm_calls: number
  finds: number
  rss_mb: number
  heap_mb: number
  heap_bytes_per_agent: number
}

export const SHARES = {
  mixed: { llm: 0.01, helpers: 0.001 },
  'llm-every-turn': { llm: 1, helpers: 0 },
} as const

/** Distinct specialty texts: agent i has text i mod this. */
export const SPECIALTY_TEXTS = 10_000

export function specialties(n: number): string[] {
  return makeProfiles(Math.min(n, SPECIALTY_TEXTS), 42).map((p) => p.specialty)
}

export const QUERY = 'Who can help me with my income tax return and deductions?'
export const prompt = (agent: string) => [{ role: 'user' as const, content: `Agent ${agent}: write one short post for your followers.` }]

/** Peak RSS while the process runs, sampled every 50 ms. */
export function rssSampler(): { peakMb: () => number; stop: () => void } {
  let peak = 0
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }
  const timer = setInterval(sample, 50)
  return {
    peakMb: () => {
      sample()
      return peak / 2 ** 20
    },
    stop: () => clearInterval(timer),
  }
}

export const gc = () => (globalThis as { gc?: () => void }).gc?.()
