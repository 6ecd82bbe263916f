// The stress-test report: `npm run bench` ends by writing bench/results/report.md (and its charts
// under bench/results/charts/) from bench/results/latest.json, and printing its head. The study's
// tables come first, in the study's own shape, the published row above Myriad's measured row and
// the ratio, with the hardware of both; then the simulation summary, every suite's verdicts and
// the charts.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import type { Machine, Row } from '../harness.js'
import { charts, num, renderSvg } from './charts.js'
import { ASYNC_DOCUMENT, MAMA } from './published.js'

export interface SuiteEntry {
  title: string
  rows: Row[]
  notes: string[]
  verdicts: string[]
  machine: Machine
  finished: string
}

export interface ResultsFile {
  machine: Machine
  started: string
  suites: Record<string, SuiteEntry | undefined>
}

const n0 = (x: number) => Math.round(x).toLocaleString('en')
const f = (x: number, digits = 2) => x.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const machineLine = (m: Machine) => `${m.cpu}, ${m.cores} cores, ${m.memory_gib} GiB, ${m.os}, Node ${m.node}, ONNX Runtime ${m.onnxruntime}, SIMD ${m.simd}`
const ratio = (x: number | undefined, unit = 'x') => (x === undefined ? '—' : `${f(x, x >= 10 ? 0 : 1)}${unit}`)

/** The matching row the study's column is compared with: fp32 with the most threads (the default Embedder), per N. */
function matchingRow(rows: Row[], n: number): Row | undefined {
  const fp32 = rows.filter((r) => r.n === n && r.precision === 'fp32')
  return fp32.sort((a, b) => Number(b.threads) - Number(a.threads))[0]
}

function mamaSection(results: ResultsFile): string[] {
  const matching = results.suites.matching?.rows ?? []
  const registry = results.suites.registry?.rows ?? []
  const policy = results.suites.policy?.rows ?? []
  const machines = [...new Set(['matching', 'registry', 'policy'].flatMap((s) => (results.suites[s] ? [machineLine(results.suites[s].machine)] : [])))]
  const out = [
    '## The MAMA stress study (seed 002)',
    '',
    `Published: ${MAMA.source}. Hardware: ${MAMA.hardware}.`,
    `Myriad: suites \`matching\`, \`registry\` and \`policy\` of this repository, on ${machines.join('; ') || '(not run yet)'}.`,
    '',
    '| N | row | semantic matching latency (ms) | registry throughput (msg/s) | success rate | MARL decision latency (ms) |',
    '|---|---|---|---|---|---|',
  ]
  for (const s of MAMA.rows) {
    const m = matchingRow(matching, s.n)
    const r = registry.find((x) => x.n === s.n)
    const p = policy.find((x) => x.n === s.n)
    const matchMs = num(m?.mean_ms)
    const perS = num(r?.msgs_per_s)
    const marlMs = num(p?.mean_us) === undefined ? undefined : Number(p?.mean_us) / 1000
    out.push(
      `| ${n0(s.n)} | study | ${f(s.matchMs[0])} ± ${f(s.matchMs[1])} | ${f(s.registryPerS, 1)} | ${f(s.success * 100, 1)}% | ${f(s.marlMs[0], 3)} ± ${f(s.marlMs[1], 3)} |`,
    )
    out.push(
      `|  | Myriad | ${matchMs === undefined ? '—' : `${f(matchMs)} ± ${f(Number(m?.std_ms))}`} | ${perS === undefined ? '—' : f(perS, 1)} | ${
        num(r?.success_rate) === undefined ? '—' : `${f(Number(r?.success_rate) * 100, 1)}%`
      } | ${marlMs === undefined ? '—' : `${f(marlMs, 4)} ± ${f(Number(p?.std_us) / 1000, 4)}`} |`,
    )
    out.push(
      `|  | ratio | ${ratio(matchMs && s.matchMs[0] / matchMs, 'x faster')} | ${ratio(perS && perS / s.registryPerS, 'x')} |  | ${ratio(marlMs && s.marlMs[0] / marlMs, 'x faster')} |`,
    )
  }
  out.push(
    '',
    'Myriad rows: matching is the mean ± std of one query embedded with the fp32 model (all-MiniLM-L6-v2 on ONNX Runtime, the default `Embedder`, its most threads) plus an exact top-5 over N specialties; registry is PML messages/s with one message per call from 50 concurrent clients (batches are faster: see the registry suite); MARL is one routing decision called from JavaScript, mean ± std. `—`: not measured in the runs this file holds (e.g. `--quick` runs fewer N).',
    '',
  )
  return out
}

function asyncSection(results: ResultsFile): string[] {
  const entry = results.suites.async
  const rows = entry?.rows ?? []
  const out = [
    '## Synchronous vs asynchronous LLM calls (seed 001)',
    '',
    `Published: ${ASYNC_DOCUMENT.source}. Hardware: ${ASYNC_DOCUMENT.hardware}.`,
    `Myriad: suite \`async\` (the \`LLM\` client against the repository's test server answering each call after 100 ms), on ${entry ? machineLine(entry.machine) : '(not run yet)'}.`,
    '',
    '| agents | row | sync wall time | async wall time | memory |',
    '|---|---|---|---|---|',
  ]
  const seconds = (s: number | undefined) => (s === undefined ? '—' : s >= 3600 ? `${f(s / 3600, 1)} h` : `${f(s, s < 10 ? 2 : 1)} s`)
  for (const d of ASYNC_DOCUMENT.rows) {
    const sync = rows.find((r) => r.mode === 'sync' && r.agents === d.agents)
    const asyncRows = rows.filter((r) => r.mode === 'async' && r.agents === d.agents)
    const best = asyncRows.sort((a, b) => Number(b.concurrency) - Number(a.concurrency))[0]
    const syncS = num(sync?.wall_s)
    const asyncS = num(best?.wall_s)
    out.push(`| ${n0(d.agents)} | document | ${seconds(d.syncS)} | ${seconds(d.asyncS)} | ${d.memory} |`)
    out.push(
      `|  | Myriad | ${seconds(syncS)} | ${asyncS === undefined ? '—' : `${seconds(asyncS)} (concurrency ${n0(Number(best?.concurrency))})`} | ${
        num(best?.heap_mb) === undefined ? '—' : `${f(Number(best?.heap_mb), 0)} MB heap`
      } |`,
    )
    out.push(`|  | ratio | ${ratio(syncS && d.syncS / syncS, 'x faster')} | ${ratio(asyncS && d.asyncS / asyncS, 'x faster')} |  |`)
  }
  out.push(
    '',
    'Myriad memory is the peak JS heap during the async run (the bench process also holds the earlier suites, so its RSS says little per row); the 1,000,000 row needs `npm run bench -- --extended`.',
    '',
  )
  return out
}

function simulationSection(results: ResultsFile): string[] {
  const entry = results.suites.simulation
  if (!entry) return ['## Simulation', '', 'The `simulation` suite has not run yet.', '']
  const out = [
    '## Simulation (a population end to end)',
    '',
    `Suite \`simulation\` on ${machineLine(entry.machine)}: per agent per tick, read the inbox, update the state, send one message; 1% of agents call the LLM (100 ms), 0.1% call findHelpers; everything recorded to the archive. Runtime = \`defineAgent\` + \`Experiment\`; floor = the same components hand-wired; plain = plain JavaScript.`,
    '',
    '| workload | agents | peer | setup s | tick p50 s | RSS MB | lost |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const r of entry.rows) {
    out.push(
      `| ${r.workload} | ${n0(Number(r.agents))} | ${r.peer} | ${f(Number(r.setup_s))} | ${f(Number(r.tick_p50_s), 3)} | ${n0(Number(r.rss_mb))} | ${r.lost} |`,
    )
  }
  out.push('')
  return out
}

function verdictsSection(results: ResultsFile): string[] {
  const out = ['## Verdicts of every suite', '']
  for (const [name, entry] of Object.entries(results.suites)) {
    if (!entry) continue
    const pass = entry.verdicts.filter((v) => v.startsWith('PASS')).length
    const miss = entry.verdicts.filter((v) => v.startsWith('MISS')).length
    out.push(`### ${name}: ${pass} PASS, ${miss} MISS`, '', `${entry.title} (${machineLine(entry.machine)}, finished ${entry.finished})`, '')
    for (const v of entry.verdicts) out.push(`- \`${v.slice(0, 4)}\` ${v.slice(4).trim()}`)
    out.push('')
  }
  return out
}

/** Writes report.md and charts/*.svg into `dir`; returns the report's text. */
export async function writeReport(results: ResultsFile, dir: string): Promise<string> {
  const rendered = charts(results.suites)
  mkdirSync(join(dir, 'charts'), { recursive: true })
  for (const chart of rendered) writeFileSync(join(dir, 'charts', chart.file), await renderSvg(chart.spec))
  const text = [
    '# Myriad stress-test report',
    '',
    `Written by \`npm run bench\` from bench/results/latest.json (this run started ${results.started} on ${machineLine(results.machine)}). Each suite's rows come from the run that last ran it, on the machine named with them. Compare figures across machines with care: these are 2-core VMs and move by 10-20% from run to run.`,
    '',
    ...mamaSection(results),
    ...asyncSection(results),
    ...simulationSection(results),
    ...verdictsSection(results),
    '## Charts',
    '',
    ...rendered.flatMap((c) => [`### ${c.title}`, '', `![${c.title}](charts/${c.file})`, '']),
  ].join('\n')
  writeFileSync(join(dir, 'report.md'), text)
  return text
}

/** The head `npm run bench` prints: the title and the study's table. */
export function reportHead(text: string): string {
  const lines = text.split('\n')
  const end = lines.findIndex((l, i) => i > 0 && l.startsWith('## Synchronous'))
  return lines.slice(0, end > 0 ? end : 30).join('\n')
}
