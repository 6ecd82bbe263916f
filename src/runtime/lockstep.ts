// The lockstep clock: tick by tick, the due turns run through the scheduler; the tick ends when its
// turns end (a turn past stepTimeoutMs is aborted), its messages have arrived (they are the next
// tick's inboxes), the policy has learnt from the tick's feedback and the tick is recorded.
import type { DeliveryStats } from './mailbox.js'
import type { Population } from './population.js'
import type { Run } from './run.js'
import { runTurns } from './scheduler.js'
import type { TickInfo } from './summary.js'
import { TurnContext, runAgentTurn } from './turn.js'

/** A signal that never fires. */
const NEVER = new AbortController().signal

export interface ClockHooks {
  stopping: AbortSignal
  /** Simulated time of a tick. */
  timeOf: (tick: number) => number
  onTick: (info: TickInfo) => void
  /** At the start of a tick, before its turns: interventions, surveys and interviews (lockstep only). */
  beforeTick?: (tick: number, now: number) => Promise<void>
  /** After a tick, everything of it recorded: a checkpoint, when one is due (lockstep only). */
  afterTick?: (tick: number) => Promise<void>
  /** The first tick to run (a resumed run's checkpoint tick; default 0). */
  first?: number
}

/** The slots that take a turn in `tick`: due to step, or with messages waiting; parked ones never. */
export function dueSlots(pop: Population, receivers: ArrayLike<number>, tick: number): { slots: Int32Array; stepDue: Uint8Array } {
  const stepping = pop.types.map((t) => t.step !== undefined && t.due(tick))
  const slots = new Int32Array(pop.size)
  const stepDue = new Uint8Array(pop.size)
  let n = 0
  let r = 0
  for (let i = 0; i < pop.size; i++) {
    const hasMail = r < receivers.length && receivers[r] === i
    if (hasMail) r++
    if (pop.parked[i]) continue
    const steps = stepping[pop.typeOf[i]]
    if (steps || hasMail) {
      slots[n] = i
      stepDue[n++] = steps ? 1 : 0
    }
  }
  return { slots: slots.subarray(0, n), stepDue: stepDue.subarray(0, n) }
}

export const delta = (now: DeliveryStats, before: DeliveryStats): DeliveryStats => ({
  sent: now.sent - before.sent,
  delivered: now.delivered - before.delivered,
  failed: now.failed - before.failed,
  lost: now.lost - before.lost,
})

export async function runLockstep(run: Run, ticks: number, hooks: ClockHooks): Promise<void> {
  const { pop, mailbox, recorder, llms, router } = run.services
  const o = run.options
  for (let tick = hooks.first ?? 0; tick < ticks && !hooks.stopping.aborted; tick++) {
    const started = performance.now()
    const now = hooks.timeOf(tick)
    const before = { ...mailbox.stats }
    mailbox.begin(tick)
    if (hooks.beforeTick) {
      try {
        await hooks.beforeTick(tick, now)
      } catch (error) {
        // An intervention that throws ends the run with its error, what was recorded flushed.
        await recorder.flush()
        throw error
      }
    }
    router?.setTick(tick)
    llms.stats.reset()
    const due = dueSlots(pop, mailbox.receivers(tick), tick)
    let turns = 0
    let errors = 0
    let k = 0
    await runTurns(
      () => (k < due.slots.length ? k++ : undefined),
      o.concurrency.steps,
      o.stepTimeoutMs,
      // stop() ends the run after the tick in flight: its turns all run.
      NEVER,
      (k, signal) => {
        const slot = due.slots[k]
        const ctx = new TurnContext(run.services, slot, tick, now, mailbox.take(tick, slot), signal)
        return runAgentTurn(ctx, pop.typeOfAgent(slot), due.stepDue[k] === 1)
      },
      (k, outcome) => {
        turns++
        if (run.finish(due.slots[k], tick, now, outcome)) errors++
      },
      () => recorder.congested() ?? mailbox.congested(),
    )
    await mailbox.flush()
    await mailbox.delivered(tick, o.deliveryTimeoutMs)
    // What is left for this tick was sent to agents parked since: counted, not kept.
    mailbox.discard(tick, now, 'which was parked before its turn')
    await router?.endTick()
    const info: TickInfo = {
      tick,
      turns,
      errors,
      llmCalls: llms.stats.calls,
      llmP50Ms: llms.stats.percentile(50),
      llmP99Ms: llms.stats.percentile(99),
      messages: delta(mailbox.stats, before),
      parked: run.parked.length,
      tickMs: performance.now() - started,
    }
    run.recordTick(now, info)
    await recorder.flush()
    hooks.onTick(info)
    await hooks.afterTick?.(tick)
  }
}
