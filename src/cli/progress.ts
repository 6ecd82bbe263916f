// How `myriad run` shows a run: a live panel redrawn in place on a terminal (log-update), one
// plain line per tick when the output is not a terminal, or one JSON object per line (--json).
import { createLogUpdate } from 'log-update'

import type { Progress, RunSummary, TickInfo } from '../runtime/index.js'

export interface Display {
  /** Called a few times a second while the run is going (only the live panel uses it). */
  live(p: Progress): void
  tick(info: TickInfo): void
  note(text: string): void
  done(summary: RunSummary): void
}

const n = (x: number) => Math.round(x).toLocaleString('en')
const seconds = (s: number) => (s >= 120 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(s < 10 ? 1 : 0)}s`)

export function summaryLines(s: RunSummary): string[] {
  const where = 'archive' in s.records ? s.records.archive : `${s.records.postgres} (schema ${s.records.schema})`
  return [
    `${s.stopped ? 'stopped' : 'done'}: ${s.exp}: ${s.ticks} ticks, ${n(s.turns)} turns in ${seconds(s.wallS)} (setup ${seconds(s.setupS)})`,
    `messages: ${n(s.messages.sent)} sent, ${n(s.messages.delivered)} delivered, ${n(s.messages.failed)} failed, ${n(s.messages.lost)} lost; LLM calls ${n(s.llm.calls)}; errors ${n(s.errors.count)}; parked ${s.parked.length}`,
    `records: ${where} (${n(s.records.rows)} rows${s.records.refused ? `, ${n(s.records.refused)} refused` : ''})`,
  ]
}

/** A panel on a terminal, redrawn in place: tick, rates, messages, LLM calls in flight, errors, ETA. */
export function livePanel(name: string, ticks: number, stream: NodeJS.WriteStream = process.stdout): Display {
  const draw = createLogUpdate(stream)
  const started = performance.now()
  let last: Progress | undefined
  let lastAt = started
  let rate = 0
  let tickStarted = started
  const tickMs: number[] = []
  const notes: string[] = []
  const render = (p: Progress) => {
    const now = performance.now()
    if (last && now > lastAt) rate = 0.7 * rate + (0.3 * (p.turns - last.turns) * 1000) / (now - lastAt)
    last = p
    lastAt = now
    const width = 24
    const share = ticks > 0 ? Math.min(1, p.ticks / ticks) : 1
    const bar = '█'.repeat(Math.round(share * width)) + '░'.repeat(width - Math.round(share * width))
    const mean = tickMs.length ? tickMs.reduce((a, b) => a + b, 0) / tickMs.length : undefined
    const eta = mean === undefined ? '' : `  ETA ${seconds((Math.max(0, ticks - p.ticks) * mean - (now - tickStarted)) / 1000)}`
    const head =
      p.phase === 'setup' || p.phase === 'idle'
        ? `${name}  setting up ${n(p.agents)} agents…`
        : `${name}  tick ${Math.min(p.ticks + 1, ticks)}/${ticks}  ${bar} ${Math.round(share * 100)}%${eta}`
    draw(
      [
        head,
        `turns ${n(p.turns)} (${n(rate)}/s)  messages ${n(p.messages)}  LLM calls ${n(p.llmCalls)} (${n(p.llmInFlight)} in flight)  errors ${n(p.errors)}`,
        `elapsed ${seconds((now - started) / 1000)}`,
        ...notes,
      ].join('\n'),
    )
  }
  return {
    live: render,
    tick(info) {
      tickMs.push(info.tickMs)
      tickStarted = performance.now()
    },
    note(text) {
      notes.push(text)
      if (last) render(last)
    },
    done(summary) {
      draw.clear()
      draw.done()
      for (const line of summaryLines(summary)) stream.write(`${line}\n`)
    },
  }
}

/** One line per tick, for logs and pipes. */
export function plainLines(name: string, ticks: number, write = (s: string) => process.stdout.write(s)): Display {
  return {
    live() {},
    tick(t) {
      write(
        `${name} tick ${t.tick + 1}/${ticks}: ${n(t.turns)} turns, ${n(t.messages.sent)} messages, ${n(t.llmCalls)} LLM calls (p50 ${t.llmP50Ms.toFixed(0)} ms), ${t.errors} errors, ${t.tickMs.toFixed(0)} ms\n`,
      )
    },
    note(text) {
      write(`${text}\n`)
    },
    done(summary) {
      for (const line of summaryLines(summary)) write(`${line}\n`)
    },
  }
}

/** One JSON object per line: `{ "type": "tick", ... }` per tick, then `{ "type": "summary", ... }`. */
export function jsonLines(write = (s: string) => process.stdout.write(s)): Display {
  return {
    live() {},
    tick(info) {
      write(`${JSON.stringify({ type: 'tick', ...info })}\n`)
    },
    note(text) {
      write(`${JSON.stringify({ type: 'note', text })}\n`)
    },
    done(summary) {
      write(`${JSON.stringify({ type: 'summary', ...summary })}\n`)
    },
  }
}
