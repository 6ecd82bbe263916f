// One scheduler for every turn: at most `limit` turns in flight. A turn waiting on the LLM holds a
// slot but not the thread, so the others run meanwhile; a turn past `timeoutMs` is aborted and
// reported as timed out, and the batch does not wait for it. Most turns end without awaiting
// anything: those cost no timer, no promise and no AbortController (the signal is made only when
// a turn reads it).
import { MyriadError } from '../errors/index.js'

export type TurnOutcome = { ok: true } | { ok: false; error: unknown; timedOut: boolean }

/** What a running turn can ask the scheduler for: its abort signal, made on first read. */
export class TurnSignal {
  private controller: AbortController | undefined
  aborted: unknown = undefined

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController()
      if (this.aborted !== undefined) this.controller.abort(this.aborted)
    }
    return this.controller.signal
  }

  abort(reason: unknown): void {
    if (this.aborted !== undefined) return
    this.aborted = reason
    this.controller?.abort(reason)
  }
}

interface Pending {
  at: number
  turn: TurnSignal
  settle: (outcome: TurnOutcome) => void
}

/**
 * Runs a turn for every item `next()` gives (`undefined`: none left) with at most `limit` in flight
 * and resolves when every one has finished or timed out. `done(item,
 * outcome)` is called exactly once per started turn, and may make `next()` give more (the async
 * clock puts an agent back for its next turn). Once `stopping` fires no item is started; the turns
 * in flight finish (or time out) as they would.
 */
export async function runTurns(
  next: () => number | undefined,
  limit: number,
  timeoutMs: number,
  stopping: AbortSignal,
  turn: (item: number, signal: TurnSignal) => void | Promise<void>,
  done: (item: number, outcome: TurnOutcome) => void,
  /** Asked before each turn starts: a promise holds the next turns back until it settles (backpressure). */
  gate: () => Promise<void> | undefined = () => undefined,
): Promise<void> {
  let running = 0
  let exhausted = false
  let pumping = false
  const pending = new Set<Pending>()
  let wake: (() => void) | undefined

  const cut = (reason: unknown, now: number) => {
    for (const p of pending) {
      if (p.at > now) continue
      p.turn.abort(reason)
      p.settle({ ok: false, error: reason, timedOut: true })
    }
  }
  const timed = Number.isFinite(timeoutMs) && timeoutMs > 0
  const sweep = timed
    ? setInterval(
        () => cut(new MyriadError('ERR_STEP_TIMEOUT', `the turn ran past stepTimeoutMs (${timeoutMs} ms) and was aborted`), performance.now()),
        Math.max(1, Math.min(50, timeoutMs / 4)),
      )
    : undefined

  const start = (k: number) => {
    running++
    const signal = new TurnSignal()
    let result: void | Promise<void>
    try {
      result = turn(k, signal)
    } catch (error) {
      running--
      done(k, { ok: false, error, timedOut: false })
      return
    }
    if (!(result instanceof Promise)) {
      running--
      done(k, { ok: true })
      return
    }
    const entry: Pending = { at: timed ? performance.now() + timeoutMs : Infinity, turn: signal, settle: () => {} }
    let settled = false
    entry.settle = (outcome) => {
      if (settled) return
      settled = true
      pending.delete(entry)
      running--
      done(k, outcome)
      pump()
    }
    pending.add(entry)
    result.then(
      () => entry.settle({ ok: true }),
      (error: unknown) => entry.settle({ ok: false, error, timedOut: false }),
    )
  }

  // A loop, not recursion: a million turns that end at once would otherwise nest a million frames.
  let held: Promise<void> | undefined
  const pump = () => {
    if (pumping || held) return
    pumping = true
    try {
      while (running < limit && !stopping.aborted) {
        const wait = gate()
        if (wait) {
          const resume = () => {
            held = undefined
            pump()
          }
          held = wait.then(resume, resume)
          return
        }
        const item = next()
        exhausted = item === undefined
        if (exhausted) break
        start(item as number)
      }
    } finally {
      pumping = false
    }
    if (running === 0 && (exhausted || stopping.aborted)) wake?.()
  }

  try {
    const finished = new Promise<void>((resolve) => {
      wake = resolve
    })
    pump()
    await finished
  } finally {
    if (sweep) clearInterval(sweep)
  }
}
