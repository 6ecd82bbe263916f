// `defineSurvey`: a questionnaire as data. Each question kind knows the zod schema of its answer,
// so one definition gives what the default LLM answer is checked against, what a handler's answer
// is checked against, and how the answers are tallied (results.ts).
import { z } from 'zod'

import { MyriadError, parseOptions } from '../errors/index.js'

const id = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/, 'an id of 1-64 letters, digits, _ . -')
const text = z.string().min(1, 'the question needs its text').max(4000)
const options = z
  .array(z.string().min(1).max(200))
  .min(2, 'a choice needs at least 2 options')
  .max(100)
  .refine((o) => new Set(o).size === o.length, 'options must be distinct')

export const QuestionSchema = z.discriminatedUnion('kind', [
  z.strictObject({ id, text, kind: z.literal('single'), options }).describe('One option out of `options`.'),
  z
    .strictObject({
      id,
      text,
      kind: z.literal('multiple'),
      options,
      min: z.number().int().min(0).default(0).describe('Fewest options picked.'),
      max: z.number().int().min(1).optional().describe('Most options picked (default: all).'),
    })
    .refine((q) => q.max === undefined || (q.min <= q.max && q.max <= q.options.length), 'min <= max <= the number of options')
    .describe('Several distinct options out of `options`.'),
  z
    .strictObject({
      id,
      text,
      kind: z.literal('likert'),
      points: z.number().int().min(2).max(11).default(5).describe('Scale points: the answer is 1..points.'),
      labels: z.tuple([z.string(), z.string()]).optional().describe('What 1 and `points` mean, e.g. ["disagree", "agree"].'),
    })
    .describe('A point on a 1..points scale.'),
  z
    .strictObject({
      id,
      text,
      kind: z.literal('number'),
      min: z.number().finite(),
      max: z.number().finite(),
      integer: z.boolean().default(false),
    })
    .refine((q) => q.min <= q.max, 'min must not exceed max')
    .describe('A number in [min, max].'),
  z.strictObject({ id, text, kind: z.literal('text'), maxLength: z.number().int().min(1).max(10_000).default(500) }).describe('Free text.'),
])

export type QuestionInput = z.input<typeof QuestionSchema>
export type Question = z.output<typeof QuestionSchema>

const SurveySpecSchema = z.strictObject({
  name: id.describe('Names the survey in the records (`surveys.form_id`) and in `surveyResults(name)`.'),
  questions: z.array(QuestionSchema).min(1, 'a survey needs at least one question').max(200),
  /** Shown to the model before the questions when it answers for the agent (default: a neutral line). */
  instructions: z.string().max(4000).optional(),
})

export type SurveySpec = z.input<typeof SurveySpecSchema>

/** The answers to a survey, by question id: a string (single, text), strings (multiple) or a number (likert, number). */
export type Answers = Record<string, string | string[] | number>

export interface Survey {
  readonly name: string
  readonly questions: readonly Question[]
  readonly instructions: string | undefined
  /** The schema of one question's answer, by id. */
  readonly answerSchemas: Readonly<Record<string, z.ZodType>>
  /** The schema of the whole form's answers: what the model's reply is checked against. */
  readonly schema: z.ZodType<Answers>
}

/** The schema of an answer to `q`. */
export function answerSchema(q: Question): z.ZodType {
  switch (q.kind) {
    case 'single':
      return z.enum(q.options as [string, ...string[]])
    case 'multiple': {
      const picks = z
        .array(z.enum(q.options as [string, ...string[]]))
        .min(q.min)
        .max(q.max ?? q.options.length)
      return picks.refine((a) => new Set(a).size === a.length, 'each option at most once')
    }
    case 'likert':
      return z.number().int().min(1).max(q.points)
    case 'number':
      return q.integer ? z.number().int().min(q.min).max(q.max) : z.number().min(q.min).max(q.max)
    case 'text':
      return z.string().max(q.maxLength)
  }
}

/**
 * Defines a survey. Checks it now: no questions, an unknown kind, duplicate ids, or options and
 * ranges that cannot be answered are `ERR_SURVEY`, naming the question.
 */
export function defineSurvey(spec: SurveySpec): Survey {
  const parsed = parseOptions(SurveySpecSchema, spec, 'survey', 'ERR_SURVEY')
  const seen = new Set<string>()
  for (const q of parsed.questions) {
    if (seen.has(q.id)) throw new MyriadError('ERR_SURVEY', `survey '${parsed.name}': question id '${q.id}' is used twice`)
    seen.add(q.id)
  }
  const answerSchemas = Object.fromEntries(parsed.questions.map((q) => [q.id, answerSchema(q)]))
  const schema = z.strictObject(answerSchemas) as unknown as z.ZodType<Answers>
  return Object.freeze({ name: parsed.name, questions: Object.freeze(parsed.questions), instructions: parsed.instructions, answerSchemas, schema })
}

/** The body of a `user-survey` message the experiment sends: the form, for the handler to answer. */
export interface SurveyRequest {
  survey: string
  questions: readonly Question[]
}

/** Whether `value` is a survey from `defineSurvey`. */
export function isSurvey(value: unknown): value is Survey {
  return typeof value === 'object' && value !== null && 'answerSchemas' in value && 'questions' in value && 'schema' in value
}

/** The question as a line of the prompt: its text and how to answer it. */
function describe(q: Question): string {
  switch (q.kind) {
    case 'single':
      return `${q.text} (one of: ${q.options.map((o) => JSON.stringify(o)).join(', ')})`
    case 'multiple':
      return `${q.text} (a list of ${q.min}-${q.max ?? q.options.length} of: ${q.options.map((o) => JSON.stringify(o)).join(', ')})`
    case 'likert':
      return `${q.text} (an integer from 1${q.labels ? ` = ${q.labels[0]}` : ''} to ${q.points}${q.labels ? ` = ${q.labels[1]}` : ''})`
    case 'number':
      return `${q.text} (${q.integer ? 'an integer' : 'a number'} from ${q.min} to ${q.max})`
    case 'text':
      return `${q.text} (text, at most ${q.maxLength} characters)`
  }
}

/** The prompt the model answers a survey with, as the agent: its profile and state, then the questions. */
export function surveyPrompt(survey: Survey, agent: { id: string; profile: unknown; state: unknown }): { role: 'system' | 'user'; content: string }[] {
  const lines = survey.questions.map((q) => `- "${q.id}": ${describe(q)}`)
  return [
    {
      role: 'system',
      content: `You are ${agent.id}. Your profile: ${JSON.stringify(agent.profile)}. Your current state: ${JSON.stringify(agent.state ?? null)}. Answer as this person would.`,
    },
    {
      role: 'user',
      content: `${survey.instructions ?? `Survey "${survey.name}".`} Reply with one JSON object whose keys are the question ids:\n${lines.join('\n')}`,
    },
  ]
}
