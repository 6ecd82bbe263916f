// One agent's turn: the `ctx` over the population's columns, and running the agent's handlers for
// its inbox and then its `step`. A turn that awaits nothing stays synchronous (no promise made),
// which is what most turns of a large population are.
import type { AgentContext, AgentLLM, AgentMemory, FindHelpersOptions, Helper, Message, Outcome, Outgoing } from '../agents/index.js'
import { BUILTIN_KINDS, type BuiltinKind } from '../agents/index.js'
import { MyriadError, invalidArg } from '../errors/index.js'
import type { AgentLLMs, CallSite } from './agent-llm.js'
import { type Mailbox, SENT } from './mailbox.js'
import type { MemoryStore } from './memory.js'
import type { AnyAgentType, Population } from './population.js'
import { type InterviewDesk, outsideQuestion } from './interviews.js'
import type { Recorder } from './recording.js'
import type { Router } from './routing.js'
import type { TurnSignal } from './scheduler.js'
import type { SurveyDesk } from './surveys.js'

/** What every turn of a run shares. */
export interface TurnServices {
  pop: Population
  mailbox: Mailbox
  recorder: Recorder
  llms: AgentLLMs
  router: Router | undefined
  memory: MemoryStore | undefined
  log: (agent: string, tick: number, args: unknown[]) => void
  surveys: SurveyDesk
  interviews: InterviewDesk
  /** The experiment's parameters now (an intervention may replace them between ticks). */
  params: () => Readonly<Record<string, unknown>>
}

const isBuiltin = (kind: string): kind is BuiltinKind => (BUILTIN_KINDS as readonly string[]).includes(kind)

export class TurnContext implements AgentContext, CallSite {
  readonly agent: string
  calls = 0
  private sent = 0
  /**
   * The operations the turn started that are still open (LLM calls, searches, memory, sends the
   * bus pushed back on). The turn ends when they have settled, and none of their failures can be
   * an unhandled rejection that takes the process down when the agent did not await it.
   */
  open: Promise<unknown>[] | undefined
  private llmView: AgentLLM | undefined
  private memoryView: AgentMemory | undefined

  constructor(
    /** The run's services (the `AgentContext` type that agents see leaves them out). */
    readonly services: TurnServices,
    readonly slot: number,
    readonly tick: number,
    readonly now: number,
    readonly inbox: readonly Message[],
    private readonly turn: TurnSignal,
  ) {
    this.agent = services.pop.ids[slot]
  }

  get id(): string {
    return this.agent
  }
  get ts(): number {
    return this.now
  }
  get profile(): Readonly<unknown> {
    return this.services.pop.profiles[this.slot] as Readonly<unknown>
  }
  get state(): unknown {
    return this.services.pop.states[this.slot]
  }
  set state(value: unknown) {
    this.services.pop.states[this.slot] = value
  }
  get signal(): AbortSignal {
    return this.turn.signal
  }
  get params(): Readonly<Record<string, unknown>> {
    return this.services.params()
  }

  rand(): number {
    return this.services.pop.random.next(this.slot)
  }

  /** Keeps `operation` with the turn (see `open`) and hands it back. */
  own<T>(operation: Promise<T>): Promise<T> {
    operation.catch(ignore)
    ;(this.open ??= []).push(operation)
    return operation
  }

  /** A bad message throws here, in the turn, whether or not the agent awaits the send. */
  send(to: string, body: unknown, options?: { kind?: string }): Promise<void> {
    const kind = options?.kind ?? 'agent-chat'
    if (typeof to !== 'string') throw invalidArg(`send: 'to' must be an agent id, got ${typeof to}`)
    let checked = body
    if (!isBuiltin(kind)) {
      const schema = this.services.pop.typeOfAgent(this.slot).messages[kind]
      if (!schema) throw new MyriadError('ERR_MESSAGE_SCHEMA', `${this.agent} sent a message of kind '${kind}', which its agent type does not declare`)
      const parsed = schema.safeParse(body)
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i: { path: PropertyKey[]; message: string }) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')
        throw new MyriadError('ERR_MESSAGE_SCHEMA', `${this.agent}: a '${kind}' message to ${to} does not fit its schema: ${issues}`)
      }
      checked = parsed.data
    }
    const busKind = isBuiltin(kind) ? kind : 'agent-chat'
    const sent = this.services.mailbox.send(this.slot, to, busKind, isBuiltin(kind) ? undefined : kind, checked, this.tick, this.now, this.sent++)
    return sent === SENT ? sent : this.own(sent)
  }

  sendMany(messages: readonly Outgoing<Record<string, never>>[]): Promise<void> {
    if (!Array.isArray(messages)) throw invalidArg('sendMany takes an array of { to, kind?, body }')
    let waits: Promise<void>[] | undefined
    for (const m of messages) {
      const sent = this.send(m.to, m.body, { kind: m.kind })
      if (sent !== SENT) (waits ??= []).push(sent)
    }
    return waits ? Promise.all(waits).then(ignore) : SENT
  }

  get llm(): AgentLLM {
    if (!this.llmView) {
      const calls = this.services.llms.forTurn(this)
      const own = <T>(p: Promise<T>) => this.own(p)
      this.llmView = {
        chat: (request) => own(calls.chat(request)),
        json: (request) => own(calls.json(request)),
        cohort: (key) => {
          const shared = calls.cohort(key)
          return { chat: (request) => own(shared.chat(request)), json: (request) => own(shared.json(request)) }
        },
      }
    }
    return this.llmView
  }

  get memory(): AgentMemory {
    if (!this.memoryView) {
      const store = this.services.memory
      const { slot, tick } = this
      if (!store) throw new MyriadError('ERR_INTERNAL', 'memory is not available in this experiment')
      this.memoryView = {
        add: (text) => this.own(store.add(slot, text, tick)),
        recall: (query, k) => this.own(store.recall(slot, query, k)),
        get size() {
          return store.size(slot)
        },
      }
    }
    return this.memoryView
  }

  findHelpers(query: string, options?: FindHelpersOptions): Promise<Helper[]> {
    const router = this.services.router
    if (!router) throw new MyriadError('ERR_NO_EMBEDDER', 'findHelpers needs agents with a specialty in the experiment (none of its agent types defines one)')
    return this.own(router.findHelpers(this.agent, query, options))
  }

  feedback(helper: string, outcome: Outcome): void {
    const router = this.services.router
    if (!router) throw new MyriadError('ERR_NO_EMBEDDER', 'feedback needs agents with a specialty in the experiment')
    router.feedback(this.agent, helper, outcome, this.now)
  }

  record(name: string, value: number, labels?: Record<string, string>): void {
    if (typeof name !== 'string' || name.length === 0) throw invalidArg('record(name, value): name must be a non-empty string')
    if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidArg(`record('${name}', value): value must be a finite number`)
    this.services.recorder.add('metrics', {
      exp_id: this.services.recorder.exp,
      ts: this.now,
      tick: this.tick,
      agent_id: this.agent,
      name,
      value,
      labels: labels ?? null,
    })
  }

  log(...args: unknown[]): void {
    this.services.log(this.agent, this.tick, args)
  }
}

type AnyHandler = (c: AgentContext, m: Message) => unknown

/**
 * One inbox message: a survey or an interview the experiment sent is answered through its desk
 * (the handler's answer, or the LLM's); any other message goes to its kind's handler, if any.
 */
function dispatch(ctx: TurnContext, handlers: Record<string, AnyHandler | undefined>, message: Message, i: number): unknown {
  const handler = handlers[message.kind]
  const services = ctx.services
  if (message.kind === 'user-survey' && services.surveys.owns(message)) return services.surveys.answer(ctx, message, handler, services.recorder)
  if (message.kind === 'user-chat' && services.interviews.owns(message)) {
    const replyId = services.mailbox.messageId(ctx.slot, ctx.tick, REPLY_INDEX + i)
    return services.interviews.answer(ctx, message, handler, services.recorder, replyId)
  }
  const outside = message.kind === 'user-chat' ? outsideQuestion(message, (id) => services.pop.slotOf(id) !== undefined) : undefined
  if (outside) {
    const replyId = services.mailbox.messageId(ctx.slot, ctx.tick, REPLY_INDEX + i)
    return services.interviews.answerOutside(ctx, message, outside, handler, services.recorder, replyId, (slot, to, body, id) =>
      services.mailbox.reply(slot, to, body, id, ctx.tick, ctx.now),
    )
  }
  return handler?.(ctx, message)
}

/** Send indexes of interview replies: above any agent's own sends in a tick. */
const REPLY_INDEX = 0x40000000

/**
 * Runs the turn: each inbox message (see `dispatch`; messages of a kind without a handler are
 * only in `ctx.inbox`), then `step` if it is due. Synchronous while the agent's code is.
 */
export function runAgentTurn(ctx: TurnContext, type: AnyAgentType, stepDue: boolean): void | Promise<void> {
  const handlers = type.on as Record<string, AnyHandler | undefined>
  const messages = ctx.inbox
  for (let i = 0; i < messages.length; i++) {
    const result = dispatch(ctx, handlers, messages[i], i)
    if (result instanceof Promise) return finishAsync(ctx, result, i + 1, handlers, stepDue ? type.step : undefined)
  }
  const result = stepDue && type.step ? type.step(ctx as AgentContext) : undefined
  if (result instanceof Promise) return result.then(() => settleOpen(ctx))
  if (ctx.open) return settleOpen(ctx)
}

/** Waits for what the turn started and did not await: the turn ends with its work. */
async function settleOpen(ctx: TurnContext): Promise<void> {
  while (ctx.open && ctx.open.length > 0) {
    const open = ctx.open
    ctx.open = []
    await Promise.allSettled(open)
  }
}

const ignore = () => {}

async function finishAsync(
  ctx: TurnContext,
  pending: Promise<unknown>,
  from: number,
  handlers: Record<string, AnyHandler | undefined>,
  step: ((c: AgentContext) => void | Promise<void>) | undefined,
): Promise<void> {
  await pending
  for (let i = from; i < ctx.inbox.length; i++) await dispatch(ctx, handlers, ctx.inbox[i], i)
  if (step) await step(ctx)
  await settleOpen(ctx)
}
