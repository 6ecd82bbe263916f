// The async clock: no global barrier. Every agent takes `ticks` turns of its own (its tick is how
// many it has taken), one after another as the scheduler has room; a message reaches its
// receiver's next turn, whenever it arrives. What it still guarantees: per agent, turns in order;
// messages from one sender in send order; each agent's random stream fixed by the seed. What it
// does not: which messages a turn sees (that depends on timing), so two runs with one seed may
// differ where agents talk. A tick is reported (metrics, the `tick` event) once every agent has
// finished that many turns or been parked. What arrives after its receiver's last turn waits in
// the inbox when the run ends, as the last tick's messages do in lockstep.
import { type ClockHooks, delta } from './lockstep.js'
import { ANY_TICK } from './mailbox.js'
import type { Run } from './run.js'
import { runTurns } from './scheduler.js'
import type { TickInfo } from './summary.js'
import { TurnContext, runAgentTurn } from './turn.js'

/** How often sends wait in the outboxes at most before they go out. */
const FLUSH_EVERY_MS = 5

export async function runAsync(run: Run, ticks: number, hooks: ClockHooks): Promise<void> {
  const { pop, mailbox, recorder, llms, router } = run.services
  const o = run.options
  if (ticks === 0 || pop.size === 0) return
  const taken = new Uint32Array(pop.size)
  /** Agents done with turn t (finished it, or parked before taking it). */
  const doneAt = new Uint32Array(ticks + 1)
  const queue: number[] = []
  for (let i = 0; i < pop.size; i++) {
    if (pop.parked[i]) for (let t = 0; t < ticks; t++) doneAt[t]++
    else queue.push(i)
  }
  let head = 0
  let reported = 0
  let before = { ...mailbox.stats }
  let errorsBefore = 0
  let turnsBefore = 0
  let tickStarted = performance.now()
  const report = () => {
    while (reported < ticks && doneAt[reported] >= pop.size) {
      const info: TickInfo = {
        tick: reported,
        turns: run.turns - turnsBefore,
        errors: run.errorCount - errorsBefore,
        llmCalls: llms.stats.calls,
        llmP50Ms: llms.stats.percentile(50),
        llmP99Ms: llms.stats.percentile(99),
        messages: delta(mailbox.stats, before),
        parked: run.parked.length,
        tickMs: performance.now() - tickStarted,
      }
      turnsBefore = run.turns
      errorsBefore = run.errorCount
      before = { ...mailbox.stats }
      tickStarted = performance.now()
      llms.stats.reset()
      // The policy learns from the feedback so far once per reported tick, as in lockstep.
      router?.endTick().catch((error: unknown) => run.fail(error))
      run.recordTick(hooks.timeOf(reported), info)
      hooks.onTick(info)
      reported++
    }
  }
  const flusher = setInterval(() => {
    void mailbox.flush().catch(() => {})
    report()
  }, FLUSH_EVERY_MS)
  try {
    await runTurns(
      () => (head < queue.length ? (queue[head++] as number) : undefined),
      o.concurrency.steps,
      o.stepTimeoutMs,
      hooks.stopping,
      (slot, signal) => {
        const tick = taken[slot]
        router?.setTick(tick)
        const ctx = new TurnContext(run.services, slot, tick, hooks.timeOf(tick), mailbox.take(ANY_TICK, slot), signal)
        return runAgentTurn(ctx, pop.typeOfAgent(slot), pop.typeOfAgent(slot).due(tick))
      },
      (slot, outcome) => {
        const tick = taken[slot]++
        run.finish(slot, tick, hooks.timeOf(tick), outcome)
        doneAt[tick]++
        if (pop.parked[slot]) for (let t = tick + 1; t < ticks; t++) doneAt[t]++
        else if (taken[slot] < ticks) queue.push(slot)
        // Keep the work list from growing without bound: drop what was consumed.
        if (head > 65_536 && head * 2 > queue.length) {
          queue.splice(0, head)
          head = 0
        }
      },
      () => recorder.congested() ?? mailbox.congested(),
    )
  } finally {
    clearInterval(flusher)
  }
  await mailbox.flush()
  await mailbox.allDelivered(o.deliveryTimeoutMs)
  await router?.endTick()
  report()
  await recorder.flush()
}
