// Message kinds and messages as agents see them.
import type { z } from 'zod'

import type { SurveyRequest } from '../surveys/define.js'

/** The bus's own kinds; an agent's `messages` add kinds of its own beside them. */
export const BUILTIN_KINDS = ['agent-chat', 'user-chat', 'user-survey'] as const
export type BuiltinKind = (typeof BUILTIN_KINDS)[number]

/** The zod schemas of an agent's own message kinds, by kind. */
export type MessageSchemas = Record<string, z.ZodType>

/**
 * The body type of a kind: its schema's output for the agent's own kinds; for the bus's, a survey
 * form (`user-survey`), an interview question (`user-chat`: the experiment's is `{ text }`, a
 * foreign client's anything), or `unknown`.
 */
export type BodyOf<M extends MessageSchemas, K> = K extends keyof M
  ? z.output<M[K]>
  : K extends 'user-survey'
    ? SurveyRequest
    : K extends 'user-chat'
      ? { text: string }
      : unknown

/** A message as a handler sees it, delivered at the start of the tick after it was sent. */
export interface Message<Body = unknown, Kind extends string = string> {
  /** The sender's agent id (for user-chat and user-survey from outside, the sender's own name). */
  from: string
  to: string
  kind: Kind
  body: Body
  /** The tick it was sent in. */
  tick: number
  msgId: string
}
