// `defineAgent`: an agent type is data (a name, zod schemas, an initial state, handlers), never an
// object per agent. The runtime keeps the population in columns and hands each turn a `ctx`.
import { z } from 'zod'

import { invalidArg } from '../errors/index.js'
import type { Answers } from '../surveys/define.js'
import type { AgentContext } from './context.js'
import { BUILTIN_KINDS, type BodyOf, type BuiltinKind, type Message, type MessageSchemas } from './messages.js'

/**
 * What a handler may give back: a `user-survey` handler the answers (by question id), a `user-chat`
 * handler the reply to an interview; returning nothing lets the LLM answer as the agent.
 */
export type Reply<K> = K extends 'user-survey' ? Answers | undefined : K extends 'user-chat' ? string | undefined : undefined

export type Handler<P, S, M extends MessageSchemas, K extends string> = (ctx: AgentContext<P, S, M>, message: Message<BodyOf<M, K>, K>) => HandlerResult<K>

// biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing returns void, an async one Promise<void>.
type HandlerResult<K> = Reply<K> | void | Promise<Reply<K> | void>

export type Handlers<P, S, M extends MessageSchemas> = { [K in BuiltinKind | (keyof M & string)]?: Handler<P, S, M, K> }

/** When an agent takes a turn without messages: every n ticks (from tick 0), or a predicate on the tick. */
export type Activation = number | ((tick: number) => boolean)

export interface AgentSpec<PS extends z.ZodType, S, M extends MessageSchemas> {
  /** Unique in an experiment; an agent's id is `<name>-<i>` unless the population says otherwise. */
  name: string
  /** The profile's schema: every profile is checked against it before the run starts. */
  profile: PS
  /** The initial state: a value (copied per agent) or made from the profile. JSON-serialisable. */
  state: S | ((profile: z.output<PS>) => S)
  /** The text the semantic index and registry hold for this agent: agents with one can be found as helpers. */
  specialty?: (profile: z.output<PS>) => string
  /** Message kinds of this agent's own, each checked on send against its schema. */
  messages?: M
  /** When `step` runs (default every tick). Handlers run whenever messages arrive. */
  every?: Activation
  /** Called once per tick the agent is due (lockstep) or per wake-up (async clock). */
  step?: (ctx: AgentContext<z.output<PS>, S, M>) => void | Promise<void>
  /** Handlers by kind, called for each message in the inbox before `step`. */
  on?: Handlers<z.output<PS>, S, M>
}

/** What `defineAgent` returns: the checked spec, with the types the runtime and `ctx` need. */
export interface AgentType<P = unknown, S = unknown, M extends MessageSchemas = MessageSchemas> {
  readonly name: string
  readonly profile: z.ZodType<P>
  readonly initialState: (profile: P) => S
  readonly specialty?: (profile: P) => string
  readonly messages: M
  /** Whether `step` is due at `tick`. */
  readonly due: (tick: number) => boolean
  readonly step?: (ctx: AgentContext<P, S, M>) => void | Promise<void>
  readonly on: Handlers<P, S, M>
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/

function activation(every: Activation | undefined, name: string): (tick: number) => boolean {
  if (every === undefined || every === 1) return () => true
  if (typeof every === 'function') return every
  if (!Number.isInteger(every) || every < 1)
    throw invalidArg(`agent '${name}': every must be a positive integer or a function of the tick, got ${String(every)}`)
  return (tick) => tick % every === 0
}

/** Copies a plain-data initial state, so agents never share one object. */
const copyOf = <S>(value: S): S => (value === null || typeof value !== 'object' ? value : structuredClone(value))

/** Defines an agent type. Checks the spec now, so a mistake fails where it is written. */
export function defineAgent<PS extends z.ZodType, S, M extends MessageSchemas = Record<never, z.ZodType>>(
  spec: AgentSpec<PS, S, M>,
): AgentType<z.output<PS>, S, M> {
  if (!spec || typeof spec !== 'object') throw invalidArg('defineAgent takes a spec object')
  if (typeof spec.name !== 'string' || !NAME.test(spec.name)) {
    throw invalidArg(`agent name must be 1-64 characters of letters, digits, '_', '.', '-' (it starts every id), got ${JSON.stringify(spec.name)}`)
  }
  if (!(spec.profile instanceof z.ZodType)) throw invalidArg(`agent '${spec.name}': profile must be a zod schema`)
  const messages = (spec.messages ?? {}) as M
  for (const [kind, schema] of Object.entries(messages)) {
    if ((BUILTIN_KINDS as readonly string[]).includes(kind)) throw invalidArg(`agent '${spec.name}': '${kind}' is a bus kind; name your own kinds otherwise`)
    if (!/^[a-z][a-z0-9_-]{0,31}$/.test(kind)) throw invalidArg(`agent '${spec.name}': message kind '${kind}' must match [a-z][a-z0-9_-]{0,31}`)
    if (!(schema instanceof z.ZodType)) throw invalidArg(`agent '${spec.name}': messages.${kind} must be a zod schema`)
  }
  const on = (spec.on ?? {}) as Handlers<z.output<PS>, S, M>
  for (const [kind, handler] of Object.entries(on)) {
    if (!(BUILTIN_KINDS as readonly string[]).includes(kind) && !Object.hasOwn(messages, kind)) {
      throw invalidArg(`agent '${spec.name}': on.${kind} handles a kind it does not declare (declare it in messages)`)
    }
    if (typeof handler !== 'function') throw invalidArg(`agent '${spec.name}': on.${kind} must be a function`)
  }
  if (spec.step !== undefined && typeof spec.step !== 'function') throw invalidArg(`agent '${spec.name}': step must be a function`)
  const state = spec.state
  return Object.freeze({
    name: spec.name,
    profile: spec.profile as z.ZodType<z.output<PS>>,
    initialState: typeof state === 'function' ? (state as (p: z.output<PS>) => S) : () => copyOf(state as S),
    specialty: spec.specialty,
    messages,
    due: activation(spec.every, spec.name),
    step: spec.step,
    on,
  })
}
