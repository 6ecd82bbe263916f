import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Sink } from './index.js'
const n = 1_000_000, BATCH = 2000
const t0 = Date.UTC(2026, 10, 29)
const rows = Array.from({ length: n }, (_, i) => ({ exp_id: 'bench', msg_id: randomUUID(), src: `agent-${i % 1000}`, dst: `agent-${(i * 7 + 1) % 1000}`, kind: 'agent-chat', ts: new Date(t0 + i), payload: { text: `message ${i}`, mood: i % 5, tags: ['market', 'gossip'] } }))
const ticks = () => { const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]) }
const out: number[] = []
for (let round = 0; round < Number(process.argv[2] ?? 6); round++) {
  const sink = await Sink.open({ dir: mkdtempSync(join(tmpdir(), 'p-')), batchRows: BATCH })
  ;(globalThis as any).gc?.()
  const k0 = ticks()
  const inflight: Promise<unknown>[] = []
  for (let i = 0; i < n; i += BATCH) {
    inflight.push(sink.write('messages', rows.slice(i, i + BATCH)))
    if (inflight.length >= 4) await inflight.shift()
  }
  await Promise.all(inflight); await sink.flush()
  out.push(ticks() - k0)
  await sink.close()
}
console.log('main ms per 1M rows:', out.join(' '), ' median', out.sort((a, b) => a - b)[out.length >> 1] * 10)
