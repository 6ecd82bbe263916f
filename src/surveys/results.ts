// The aggregates of a survey as its answers come in: counts per option, mean and median of scales
// and numbers, response and invalid rates. Kept as counters and one growing Float64Array per
// numeric question, so a survey of a million agents costs megabytes, not a million objects.
import type { Question, Survey } from './define.js'

export interface QuestionResults {
  id: string
  kind: Question['kind']
  /** Valid answers. */
  answered: number
  /** Answers that failed the question's schema (or never came: a failed turn, a timeout). */
  invalid: number
  /** single / multiple: how often each option was picked; likert: how often each point. */
  counts?: Record<string, number>
  /** likert / number. */
  mean?: number
  median?: number
  min?: number
  max?: number
}

export interface SurveyResults {
  survey: string
  /** The tick it was delivered in. */
  tick: number
  /** Agents it was sent to. */
  asked: number
  /** Agents whose answers are recorded (valid or not). */
  responded: number
  /** responded / asked. */
  responseRate: number
  /** Invalid answers / all recorded answers, over every question. */
  invalidRate: number
  /** Whether every agent asked has answered. */
  complete: boolean
  questions: QuestionResults[]
}

class Tally {
  answered = 0
  invalid = 0
  counts: Map<string, number> | undefined
  private values: Float64Array | undefined
  private n = 0

  constructor(readonly question: Question) {
    if (question.kind === 'single' || question.kind === 'multiple') this.counts = new Map(question.options.map((o) => [o, 0]))
    if (question.kind === 'likert') this.counts = new Map(Array.from({ length: question.points }, (_, i) => [String(i + 1), 0]))
    if (question.kind === 'likert' || question.kind === 'number') this.values = new Float64Array(64)
  }

  add(answer: unknown): void {
    this.answered++
    const counts = this.counts
    if (Array.isArray(answer)) for (const a of answer) counts?.set(a, (counts.get(a) ?? 0) + 1)
    else if (counts && (typeof answer === 'string' || typeof answer === 'number')) counts.set(String(answer), (counts.get(String(answer)) ?? 0) + 1)
    if (this.values && typeof answer === 'number') {
      if (this.n === this.values.length) {
        const grown = new Float64Array(this.n * 2)
        grown.set(this.values)
        this.values = grown
      }
      this.values[this.n++] = answer
    }
  }

  results(): QuestionResults {
    const out: QuestionResults = { id: this.question.id, kind: this.question.kind, answered: this.answered, invalid: this.invalid }
    if (this.counts) out.counts = Object.fromEntries(this.counts)
    if (this.values && this.n > 0) {
      const sorted = this.values.slice(0, this.n).sort()
      let sum = 0
      for (const v of sorted) sum += v
      const mid = this.n >> 1
      out.mean = sum / this.n
      out.median = this.n % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
      out.min = sorted[0]
      out.max = sorted[this.n - 1]
    }
    return out
  }
}

/** One delivery of a survey: its tallies, filled as answers are recorded. */
export class SurveyTally {
  responded = 0
  private readonly tallies: Tally[]

  constructor(
    readonly survey: Survey,
    readonly tick: number,
    readonly asked: number,
  ) {
    this.tallies = survey.questions.map((q) => new Tally(q))
  }

  /** One agent's checked answers: a value per question, or `undefined` where it was invalid. */
  add(answers: readonly unknown[]): void {
    this.responded++
    for (let i = 0; i < this.tallies.length; i++) {
      if (answers[i] === undefined) this.tallies[i].invalid++
      else this.tallies[i].add(answers[i])
    }
  }

  results(): SurveyResults {
    const questions = this.tallies.map((t) => t.results())
    const all = questions.reduce((n, q) => n + q.answered + q.invalid, 0)
    const invalid = questions.reduce((n, q) => n + q.invalid, 0)
    return {
      survey: this.survey.name,
      tick: this.tick,
      asked: this.asked,
      responded: this.responded,
      responseRate: this.asked === 0 ? 0 : this.responded / this.asked,
      invalidRate: all === 0 ? 0 : invalid / all,
      complete: this.responded >= this.asked,
      questions,
    }
  }
}
