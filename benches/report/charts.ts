// The report's charts: Vega-Lite specs over the rows of bench/results/latest.json, rendered to SVG
// by vega (no browser, no hand-drawn SVG). Each chart is skipped when its suite has no rows.
import * as vega from 'vega'
import { type TopLevelSpec, compile } from 'vega-lite'

import type { Row } from '../harness.js'
import { MAMA } from './published.js'

export interface Chart {
  file: string
  title: string
  spec: TopLevelSpec
}

type Suites = Record<string, { rows: Row[] } | undefined>

/** A finite number, or undefined (rows hold null where a run measured nothing). */
export const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)

const lines = (title: string, x: string, y: string, values: object[], logY = false): TopLevelSpec => ({
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  title,
  width: 520,
  height: 280,
  data: { values },
  mark: { type: 'line', point: true },
  encoding: {
    x: { field: 'x', type: 'quantitative', title: x, scale: { type: 'log' } },
    y: { field: 'y', type: 'quantitative', title: y, scale: logY ? { type: 'log' } : {} },
    color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 2, labelLimit: 400, columnPadding: 16 } },
  },
})

const bars = (title: string, y: string, values: object[]): TopLevelSpec => ({
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  title,
  width: 520,
  height: { step: 18 },
  data: { values },
  mark: 'bar',
  encoding: {
    y: { field: 'label', type: 'nominal', title: null, sort: null, axis: { labelLimit: 400 } },
    x: { field: 'value', type: 'quantitative', title: y },
    color: { field: 'group', type: 'nominal', title: null, legend: { orient: 'bottom' } },
  },
})

/** The charts the rows allow. */
export function charts(suites: Suites): Chart[] {
  const out: Chart[] = []
  const matching = suites.matching?.rows ?? []
  if (matching.length > 0) {
    const values: object[] = []
    for (const r of matching) {
      const series = `Myriad ${r.precision}, ${r.threads} thread${r.threads === 1 ? '' : 's'} (p50)`
      if (num(r.p50_ms)) values.push({ x: r.n, y: r.p50_ms, series })
      if (num(r.ort_floor_ms)) values.push({ x: r.n, y: r.ort_floor_ms, series: `bare ONNX Runtime session, ${r.precision} (p50)` })
      if (num(r.peer_p50_ms)) values.push({ x: r.n, y: r.peer_p50_ms, series: `transformers.js + JS loop, ${r.precision} (p50)` })
    }
    for (const s of MAMA.rows) values.push({ x: s.n, y: s.matchMs[0], series: 'MAMA study (mean, Apple M + MPS)' })
    out.push({
      file: 'matching-latency.svg',
      title: 'Matching latency vs N',
      spec: lines('Embed one query + top-5 among N agents', 'agents (N)', 'ms', values, true),
    })
  }
  const registry = suites.registry?.rows ?? []
  if (registry.length > 0) {
    const values: object[] = []
    for (const r of registry) {
      values.push({ x: r.n, y: r.msgs_per_s, series: 'Myriad, one message per call' })
      if (num(r.batched_msgs_per_s)) values.push({ x: r.n, y: r.batched_msgs_per_s, series: 'Myriad, batches' })
    }
    for (const s of MAMA.rows) values.push({ x: s.n, y: s.registryPerS, series: 'MAMA study' })
    out.push({
      file: 'registry-throughput.svg',
      title: 'Registry throughput',
      spec: lines('PML messages per second after registering N agents', 'agents (N)', 'messages/s', values, true),
    })
  }
  const bus = suites.bus?.rows ?? []
  if (bus.length > 0) {
    const values = bus
      .filter((r) => num(r.msgs_per_s))
      .map((r) => ({
        label: `${r.broker}: ${r.client}, MQTT ${r.protocol === 5 ? '5' : '3.1.1'}, QoS ${r.qos}`,
        value: r.msgs_per_s,
        group: r.client === 'myriad' ? 'Myriad' : 'peer',
      }))
    out.push({
      file: 'bus-throughput.svg',
      title: 'Bus throughput',
      spec: bars('Messages per second through the broker (lost must be 0)', 'messages/s', values),
    })
  }
  const sink = suites.sink?.rows ?? []
  if (sink.length > 0) {
    const values = sink
      .filter((r) => num(r.rows_per_s))
      .map((r) => ({ label: String(r.method), value: r.rows_per_s, group: String(r.method).startsWith('myriad') ? 'Myriad' : 'peer' }))
    out.push({ file: 'sink-throughput.svg', title: 'Sink throughput', spec: bars('Rows per second recorded', 'rows/s', values) })
  }
  const simulation = suites.simulation?.rows ?? []
  if (simulation.length > 0) {
    const values = simulation.filter((r) => num(r.rss_mb)).map((r) => ({ x: r.agents, y: r.rss_mb, series: `${r.peer} (${r.workload})` }))
    out.push({
      file: 'simulation-rss.svg',
      title: 'Memory vs agents',
      spec: lines('Peak RSS of a population run (fresh process per row)', 'agents', 'RSS (MB)', values, true),
    })
  }
  return out
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}
