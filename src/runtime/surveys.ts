// Surveys of a running population: scheduled for a tick, delivered at its start on the
// `user-survey` kind (filed straight into the inboxes: a million copies need not cross the bus),
// answered in the agent's turn by its `on['user-survey']` handler or, when it has none or it
// returns nothing, by the LLM as the agent. Every question of every agent asked gets exactly one
// `surveys` row, valid or not; the tallies (`exp.surveyResults`) fill as the rows are recorded.
import type { AgentContext, Message } from '../agents/index.js'
import { MyriadError, invalidArg } from '../errors/index.js'
import { LLMError } from '../llm/index.js'
import { extractJson, NOT_FOUND } from '../llm/structured.js'
import { type Answers, type Survey, type SurveyRequest, isSurvey, surveyPrompt } from '../surveys/define.js'
import { type SurveyResults, SurveyTally } from '../surveys/results.js'
import type { Mailbox } from './mailbox.js'
import type { AnyAgentType, Population } from './population.js'
import { hash32, stream } from './random.js'
import type { Recorder } from './recording.js'

/** An agent as a survey's `where` (and an intervention's filter) sees it. */
export interface AgentView {
  id: string
  type: string
  profile: unknown
  state: unknown
}

/** Who is asked: listed ids, a filter, or both; then a sample of them. Default: everyone. */
export interface SurveyTarget {
  agents?: readonly string[]
  where?: (agent: AgentView) => boolean
  /** A count (an integer >= 1) or a share (0 < x < 1) of the agents chosen, drawn with the run's seed. */
  sample?: number
  /** The tick it is delivered at (default: the next tick to start). */
  atTick?: number
}

/** A survey scheduled or delivered: `done` resolves with its results once every agent asked has answered. */
export interface ScheduledSurvey {
  survey: string
  tick: number
  done: Promise<SurveyResults>
}

interface Delivery {
  survey: Survey
  target: SurveyTarget
  tick: number
  body: SurveyRequest
  tally: SurveyTally | undefined
  resolve: (results: SurveyResults) => void
}

/** The sender the records show for what the experimenter sends. */
export const EXPERIMENTER = 'experimenter'

type SurveyHandler = (ctx: AgentContext, message: Message) => unknown

export class SurveyDesk {
  private readonly pending: Delivery[] = []
  /** Deliveries by the message body they sent: how a turn knows a survey from any `user-survey` message. */
  private readonly byBody = new WeakMap<object, Delivery>()
  private readonly latest = new Map<string, Delivery>()

  constructor(
    private readonly exp: () => string,
    private readonly seed: number,
  ) {}

  schedule(survey: Survey, target: SurveyTarget, nextTick: number): ScheduledSurvey {
    if (!isSurvey(survey)) throw new MyriadError('ERR_SURVEY', 'survey(...) takes a survey from defineSurvey')
    const t = target ?? {}
    if (typeof t !== 'object') throw invalidArg('survey(survey, target): target must be an object')
    const tick = t.atTick ?? nextTick
    if (!Number.isInteger(tick) || tick < 0) throw invalidArg(`survey '${survey.name}': atTick must be a non-negative integer, got ${String(tick)}`)
    if (tick < nextTick)
      throw new MyriadError('ERR_TICK_PAST', `survey '${survey.name}' is for tick ${tick}, but the run is past it (the next tick is ${nextTick})`)
    if (t.agents !== undefined && (!Array.isArray(t.agents) || t.agents.some((a) => typeof a !== 'string'))) {
      throw invalidArg(`survey '${survey.name}': agents must be an array of agent ids`)
    }
    if (t.where !== undefined && typeof t.where !== 'function') throw invalidArg(`survey '${survey.name}': where must be a function of the agent`)
    const sample = t.sample
    if (sample !== undefined && !(sample > 0 && (sample < 1 || Number.isInteger(sample)))) {
      throw invalidArg(`survey '${survey.name}': sample must be a count (an integer >= 1) or a share in (0, 1), got ${String(sample)}`)
    }
    let resolve!: (results: SurveyResults) => void
    const done = new Promise<SurveyResults>((r) => {
      resolve = r
    })
    const body: SurveyRequest = Object.freeze({ survey: survey.name, questions: survey.questions })
    const delivery: Delivery = { survey, target: t, tick, body, tally: undefined, resolve }
    this.pending.push(delivery)
    this.byBody.set(body, delivery)
    return { survey: survey.name, tick, done }
  }

  /** Ids the pending deliveries name that are not agents (checked before tick 0). */
  unknownIds(pop: Population): string[] {
    return this.pending.flatMap((d) => (d.target.agents ?? []).filter((id) => pop.slotOf(id) === undefined))
  }

  /** The agent types the pending deliveries can reach that would need the LLM to answer. */
  needsLLM(pop: Population): boolean {
    return this.pending.length > 0 && pop.types.some((t) => !t.on['user-survey'])
  }

  /** Files the surveys due at `tick` into their agents' inboxes; returns the events to record. */
  deliver(tick: number, pop: Population, mailbox: Mailbox): { survey: string; asked: number; ids: string[] }[] {
    const due = this.pending.filter((d) => d.tick === tick)
    if (due.length === 0) return []
    this.pending.splice(0, this.pending.length, ...this.pending.filter((d) => d.tick !== tick))
    return due.map((d) => {
      const slots = this.targets(d, pop)
      d.tally = new SurveyTally(d.survey, tick, slots.length)
      this.latest.set(d.survey.name, d)
      for (const slot of slots) {
        mailbox.file(tick, slot, 'user-survey', d.body, { from: EXPERIMENTER, msgId: mailbox.messageId(pop.size, tick, hash32(`${d.survey.name}:${slot}`)) })
      }
      if (slots.length === 0) d.resolve(d.tally.results())
      return { survey: d.survey.name, asked: slots.length, ids: Array.from(slots.subarray(0, 100), (s) => pop.ids[s]) }
    })
  }

  /** The survey a `user-survey` message carries, if the experiment sent it. */
  owns(message: Message): boolean {
    return typeof message.body === 'object' && message.body !== null && this.byBody.has(message.body)
  }

  results(name: string): SurveyResults | undefined {
    return this.latest.get(name)?.tally?.results()
  }

  /** The run ended: deliveries still waiting for answers resolve with what they have. */
  close(): void {
    for (const d of this.latest.values()) if (d.tally && !d.tally.results().complete) d.resolve(d.tally.results())
    for (const d of this.pending) d.resolve(new SurveyTally(d.survey, d.tick, 0).results())
  }

  /**
   * Answers the survey in `message` in the agent's turn: the handler's answers, else the LLM's.
   * Synchronous when the handler is and answers.
   */
  answer(ctx: AgentContext, message: Message, handler: SurveyHandler | undefined, recorder: Recorder): void | Promise<void> {
    const d = this.byBody.get(message.body as object) as Delivery
    const started = performance.now()
    const finish = (values: readonly unknown[], raws: readonly (string | null)[]) => this.record(ctx, d, values, raws, performance.now() - started, recorder)
    const failed = (error: unknown) =>
      finish(
        [],
        d.survey.questions.map(() => (error instanceof MyriadError ? `${error.code}: ${error.message}` : String(error))),
      )
    const fromLLM = () => {
      let call: ReturnType<AgentContext['llm']['json']>
      try {
        call = ctx.llm.json({ messages: surveyPrompt(d.survey, ctx), schema: d.survey.schema, schemaName: 'survey' })
      } catch (error) {
        // No LLM, or the agent's budget spent: recorded as invalid answers, and a failed turn.
        failed(error)
        throw error
      }
      return call.then(
        (result) => finish(...this.check(d.survey, result.data)),
        (error: unknown) => {
          // A reply that failed its schema twice: what of it can be read is checked question by question.
          const raw = error instanceof LLMError ? error.details.raw : undefined
          if (raw !== undefined) {
            const json = extractJson(raw)
            if (json !== NOT_FOUND && typeof json === 'object' && json !== null) return finish(...this.check(d.survey, json as Answers))
            return finish(
              [],
              d.survey.questions.map(() => raw),
            )
          }
          failed(error)
        },
      )
    }
    let given: unknown
    try {
      given = handler?.(ctx, message)
    } catch (error) {
      failed(error)
      throw error
    }
    if (given instanceof Promise) {
      return given.then(
        (value) => (value === undefined ? fromLLM() : finish(...this.check(d.survey, value))),
        (error: unknown) => {
          failed(error)
          throw error
        },
      )
    }
    if (given === undefined) return fromLLM()
    finish(...this.check(d.survey, given))
  }

  /** Each question's answer checked against its schema: the value (undefined when invalid) and what was given. */
  private check(survey: Survey, answers: unknown): [unknown[], (string | null)[]] {
    const values: unknown[] = []
    const raws: (string | null)[] = []
    const object = typeof answers === 'object' && answers !== null && !Array.isArray(answers) ? (answers as Record<string, unknown>) : {}
    for (const q of survey.questions) {
      const given = object[q.id]
      raws.push(given === undefined ? null : typeof given === 'string' ? given : (JSON.stringify(given) ?? null))
      const parsed = survey.answerSchemas[q.id].safeParse(given)
      values.push(parsed.success ? parsed.data : undefined)
    }
    return [values, raws]
  }

  private record(ctx: AgentContext, d: Delivery, values: readonly unknown[], raws: readonly (string | null)[], latencyMs: number, recorder: Recorder): void {
    const exp = this.exp()
    d.survey.questions.forEach((q, i) => {
      const value = values[i]
      recorder.add('surveys', {
        exp_id: exp,
        agent_id: ctx.id,
        ts: ctx.now,
        tick: ctx.tick,
        form_id: d.survey.name,
        question: q.id,
        answers: value ?? null,
        raw: raws[i] ?? null,
        latency_ms: latencyMs,
        valid: value !== undefined,
      })
    })
    const tally = d.tally as SurveyTally
    tally.add(values)
    if (tally.responded === tally.asked) d.resolve(tally.results())
  }

  /** The slots a delivery asks: listed, filtered, sampled; never parked ones. In slot order. */
  private targets(d: Delivery, pop: Population): Int32Array {
    const t = d.target
    let slots: number[]
    if (t.agents) slots = [...new Set(t.agents.map((id) => pop.slotOf(id)).filter((s): s is number => s !== undefined))].sort((a, b) => a - b)
    else slots = Array.from({ length: pop.size }, (_, i) => i)
    slots = slots.filter((s) => !pop.parked[s])
    if (t.where) slots = slots.filter((s) => (t.where as (a: AgentView) => boolean)(viewOf(pop, s)))
    if (t.sample !== undefined) {
      const want = Math.min(slots.length, t.sample < 1 ? Math.round(slots.length * t.sample) : t.sample)
      // A partial Fisher-Yates shuffle with the run's seed: the same seed asks the same agents.
      const rand = stream(this.seed ^ hash32(`survey:${d.survey.name}:${d.tick}`))
      for (let i = 0; i < want; i++) {
        const j = i + Math.floor(rand() * (slots.length - i))
        ;[slots[i], slots[j]] = [slots[j], slots[i]]
      }
      slots = slots.slice(0, want).sort((a, b) => a - b)
    }
    return Int32Array.from(slots)
  }
}

export function viewOf(pop: Population, slot: number): AgentView {
  const type: AnyAgentType = pop.typeOfAgent(slot)
  return { id: pop.ids[slot], type: type.name, profile: pop.profiles[slot], state: pop.states[slot] }
}
