// Interviews: `exp.interview(id, text)` files a `user-chat` message for the agent at the start of
// the next tick; its turn answers through its `on['user-chat']` handler (a returned string is the
// reply) or, when it has none or it returns nothing, through the LLM with its profile, state and
// the memories closest to the question. Both sides of the exchange are `messages` rows.
import type { AgentContext, Message } from '../agents/index.js'
import { MyriadError } from '../errors/index.js'
import type { Mailbox } from './mailbox.js'
import type { Population } from './population.js'
import type { Recorder } from './recording.js'

/** The sender the records show for interview questions, and the receiver of the replies. */
export const INTERVIEWER = 'interviewer'

/** Memories put in the default answer's prompt. */
const RECALLED = 5

interface Pending {
  id: string
  text: string
  resolve: (reply: string) => void
  reject: (error: unknown) => void
}

type ChatHandler = (ctx: AgentContext, message: Message) => unknown

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

  answer(ctx: AgentContext, message: Message, handler: ChatHandler | undefined, recorder: Recorder, replyId: string): void | Promise<void> {
    const p = this.byBody.get(message.body as object) as Pending
    const reply = (text: string) => {
      recorder.add('messages', {
        exp_id: this.exp(),
        msg_id: replyId,
        src: ctx.id,
        dst: INTERVIEWER,
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
