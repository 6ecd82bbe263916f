// Interviews: `exp.interview(id, text)` files a `user-chat` message for the agent at the start of
// the next tick; its turn answers through its `on['user-chat']` handler (a returned string is the
// reply) or, when it has none or it returns nothing, through the LLM with its profile, state and
// the memories closest to the question. Both sides of the exchange are `messages` rows.
//
// Over MQTT an outside client interviews the same way: it publishes `{ "text", "replyTo" }` on
// the agent's `user-chat` topic, and the reply `{ "text", "from", "inReplyTo" }` goes to the
// `user-chat` topic of `replyTo` (exps/<exp>/agents/<replyTo>/user-chat), which it subscribes to.
import type { AgentContext, Message } from '../agents/index.js'
import { MyriadError } from '../errors/index.js'
import type { Mailbox } from './mailbox.js'
import type { Population } from './population.js'
import type { Recorder } from './recording.js'

/** The sender the records show for interview questions, and the receiver of the replies. */
export const INTERVIEWER = 'interviewer'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Memories put in the default answer's prompt. */
const RECALLED = 5

interface Pending {
  id: string
  text: string
  resolve: (reply: string) => void
  reject: (error: unknown) => void
}

type ChatHandler = (ctx: AgentContext, message: Message) => unknown

/** How a reply leaves: over the bus to an outside client (`Mailbox.reply`). */
export type Publish = (slot: number, to: string, body: unknown, msgId: string) => void

/** An outside client's interview question: a `user-chat` message from no agent, with a text and where to reply. */
export function outsideQuestion(message: Message, isAgent: (id: string) => boolean): { text: string; replyTo: string } | undefined {
  if (message.kind !== 'user-chat' || (message.from !== '' && isAgent(message.from))) return undefined
  const body = message.body as { text?: unknown; replyTo?: unknown } | null
  if (typeof body !== 'object' || body === null || typeof body.text !== 'string' || typeof body.replyTo !== 'string') return undefined
  if (body.text.length === 0 || body.replyTo.length === 0 || /[/+#]/.test(body.replyTo)) return undefined
  return { text: body.text, replyTo: body.replyTo }
}

export class InterviewDesk {
  private queued: Pending[] = []
  private readonly byBody = new WeakMap<object, Pending>()
  private asked = 0

  constructor(private readonly exp: () => string) {}

  ask(id: string, text: string): Promise<string> {
    return new Promise((resolve, reject) => this.queued.push({ id, text, resolve, reject }))
  }

  /** Files the questions asked since the last tick into this tick's inboxes (and records them). */
  deliver(tick: number, ts: number, pop: Population, mailbox: Mailbox, recorder: Recorder): number {
    const queued = this.queued
    this.queued = []
    for (const p of queued) {
      const slot = pop.slotOf(p.id)
      if (slot === undefined) {
        p.reject(new MyriadError('ERR_UNKNOWN_AGENT', `interview: '${p.id}' is not an agent of this experiment`))
        continue
      }
      if (pop.parked[slot]) {
        p.reject(new MyriadError('ERR_AGENT_PARKED', `interview: ${p.id} was parked before it could be interviewed`))
        continue
      }
      const body = Object.freeze({ text: p.text })
      this.byBody.set(body, p)
      const msgId = mailbox.messageId(pop.size + 1, tick, this.asked++)
      mailbox.file(tick, slot, 'user-chat', body, { from: INTERVIEWER, msgId })
      recorder.add('messages', { exp_id: this.exp(), msg_id: msgId, src: INTERVIEWER, dst: p.id, kind: 'user-chat', ts, tick, payload: body })
    }
    return queued.length
  }

  owns(message: Message): boolean {
    return typeof message.body === 'object' && message.body !== null && this.byBody.has(message.body)
  }

  /** The run ended: questions never delivered are refused. */
  close(): void {
    for (const p of this.queued.splice(0)) p.reject(new MyriadError('ERR_EXPERIMENT_STATE', 'the run ended before the interview question was delivered'))
  }

  /**
   * An outside client's question (see `outsideQuestion`): recorded, answered as an interview, and
   * the reply (or the failure's message) published to `replyTo`.
   */
  answerOutside(
    ctx: AgentContext & { slot: number },
    message: Message,
    question: { text: string; replyTo: string },
    handler: ChatHandler | undefined,
    recorder: Recorder,
    replyId: string,
    publish: Publish,
  ): void | Promise<void> {
    recorder.add('messages', {
      exp_id: this.exp(),
      // The column is a uuid: an outside client's own message id is kept only when it is one.
      msg_id: UUID.test(message.msgId) ? message.msgId : null,
      src: question.replyTo,
      dst: ctx.id,
      kind: 'user-chat',
      ts: ctx.now,
      tick: ctx.tick,
      payload: message.body ?? null,
    })
    const inReplyTo = message.msgId || null
    const p: Pending = {
      id: ctx.id,
      text: question.text,
      resolve: (text) => publish(ctx.slot, question.replyTo, { text, from: ctx.id, inReplyTo }, replyId),
      reject: (error) =>
        publish(ctx.slot, question.replyTo, { error: error instanceof Error ? error.message : String(error), from: ctx.id, inReplyTo }, replyId),
    }
    return this.answerWith(p, question.replyTo, ctx, message, handler, recorder, replyId)
  }

  answer(ctx: AgentContext, message: Message, handler: ChatHandler | undefined, recorder: Recorder, replyId: string): void | Promise<void> {
    return this.answerWith(this.byBody.get(message.body as object) as Pending, INTERVIEWER, ctx, message, handler, recorder, replyId)
  }

  private answerWith(
    p: Pending,
    to: string,
    ctx: AgentContext,
    message: Message,
    handler: ChatHandler | undefined,
    recorder: Recorder,
    replyId: string,
  ): void | Promise<void> {
    const reply = (text: string) => {
      recorder.add('messages', {
        exp_id: this.exp(),
        msg_id: replyId,
        src: ctx.id,
        dst: to,
        kind: 'user-chat',
        ts: ctx.now,
        tick: ctx.tick,
        payload: { text },
      })
      p.resolve(text)
    }
    const settle = (given: unknown): void | Promise<void> => {
      if (given === undefined) return this.fromLLM(ctx, p.text).then(reply)
      if (typeof given !== 'string')
        throw new MyriadError('ERR_INVALID_ARG', `${ctx.id}'s user-chat handler answered an interview with a ${typeof given}; return the reply text`)
      reply(given)
    }
    const fail = (error: unknown) => {
      p.reject(error)
      throw error
    }
    let given: unknown
    try {
      given = handler?.(ctx, message)
      if (given instanceof Promise) return given.then(settle).catch(fail)
      const settled = settle(given)
      if (settled instanceof Promise) return settled.catch(fail)
    } catch (error) {
      fail(error)
    }
  }

  private async fromLLM(ctx: AgentContext, question: string): Promise<string> {
    const memories = ctx.memory.size > 0 ? await ctx.memory.recall(question, RECALLED) : []
    const remembered = memories.length > 0 ? ` You remember: ${memories.map((m) => JSON.stringify(m.text)).join('; ')}.` : ''
    const result = await ctx.llm.chat({
      messages: [
        {
          role: 'system',
          content: `You are ${ctx.id}. Your profile: ${JSON.stringify(ctx.profile)}. Your current state: ${JSON.stringify(ctx.state ?? null)}.${remembered} Answer the interviewer as this person would.`,
        },
        { role: 'user', content: question },
      ],
    })
    return result.text
  }
}
