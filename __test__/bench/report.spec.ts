// The stress-test report that `npm run bench` writes: the study's tables in the study's shape (the
// published row, Myriad's measured row, the ratio), the hardware of both, the verdicts, and charts
// that Vega renders to SVG and that draw something when rendered to pixels.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Resvg } from '@resvg/resvg-js'
import test from 'ava'

import type { Row } from '../../benches/harness.js'
import { type ResultsFile, reportHead, writeReport } from '../../benches/report/index.js'

const machine = { cpu: 'Test CPU 9000', cores: 2, memory_gib: 24, os: 'linux', node: 'v20', simd: 'avx2', onnxruntime: '1.30.0' }
const entry = (title: string, rows: Row[], verdicts: string[] = []) => ({
  title,
  rows,
  notes: [],
  verdicts,
  machine,
  finished: '2026-12-07T00:00:00Z',
})

const results: ResultsFile = {
  machine,
  started: '2026-12-07T00:00:00Z',
  suites: {
    matching: entry('matching', [
      { n: 10, precision: 'fp32', threads: 1, mean_ms: 9, std_ms: 1, p50_ms: 9, ort_floor_ms: 8, peer_p50_ms: null },
      { n: 10, precision: 'fp32', threads: 2, mean_ms: 7.325, std_ms: 0.5, p50_ms: 7, ort_floor_ms: 6.5, peer_p50_ms: 12 },
      { n: 10, precision: 'int8', threads: 1, mean_ms: 3, std_ms: 0.2, p50_ms: 3, ort_floor_ms: 2.9, peer_p50_ms: null },
      { n: 1000, precision: 'fp32', threads: 2, mean_ms: 10.12, std_ms: 1.5, p50_ms: 10, ort_floor_ms: 9, peer_p50_ms: 30 },
    ]),
    registry: entry(
      'registry',
      [
        { n: 10, msgs_per_s: 337_195, batched_msgs_per_s: 900_000, success_rate: 1 },
        { n: 1000, msgs_per_s: 400_000, batched_msgs_per_s: 950_000, success_rate: 1 },
      ],
      ['PASS  one message per call', 'MISS  batched'],
    ),
    policy: entry('policy', [{ n: 10, mean_us: 4.28, std_us: 1 }]),
    async: entry('async', [
      { agents: 100, mode: 'async', concurrency: 1000, wall_s: 0.125, heap_mb: 40 },
      { agents: 100, mode: 'async', concurrency: 100, wall_s: 0.13, heap_mb: 38 },
      { agents: 100, mode: 'sync', concurrency: 1, wall_s: 10.1 },
    ]),
    simulation: entry('simulation', [
      { workload: 'mixed', agents: 1000, peer: 'runtime', setup_s: 1.5, tick_p50_s: 0.13, rss_mb: 377, lost: 0 },
      { workload: 'mixed', agents: 100_000, peer: 'runtime', setup_s: 14, tick_p50_s: 1.05, rss_mb: 863, lost: 0 },
      { workload: 'mixed', agents: 100_000, peer: 'plain', setup_s: 0.5, tick_p50_s: 13.1, rss_mb: 940, lost: 0 },
    ]),
    bus: entry('bus', [
      { broker: 'mosquitto', qos: 0, client: 'myriad', protocol: 4, msgs_per_s: 50_000, lost: 0 },
      { broker: 'mosquitto', qos: 0, client: 'mqtt.js', protocol: 4, msgs_per_s: 38_000, lost: 0 },
    ]),
    sink: entry('sink', [
      { method: 'myriad-copy', rows_per_s: 80_000 },
      { method: 'pg-copy-streams', rows_per_s: 79_000 },
    ]),
  },
}

test('the MAMA table: the study row, Myriad measured row and the ratio per N, with the hardware of both', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-report-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const text = await writeReport(results, dir)
  t.is(readFileSync(join(dir, 'report.md'), 'utf8'), text)
  t.regex(text, /Hardware: Apple M-series chip, MPS/)
  t.regex(text, /on Test CPU 9000, 2 cores, 24 GiB/)
  const lines = text.split('\n')
  const at = lines.indexOf('| 10 | study | 14.65 ± 16.31 | 33,719.5 | 100.0% | 0.214 ± 0.906 |')
  t.true(at > 0, 'the published row of N = 10')
  // fp32 with the most threads (2) is the row compared; the ratios are study / Myriad for latency.
  t.is(lines[at + 1], '|  | Myriad | 7.33 ± 0.50 | 337,195.0 | 100.0% | 0.0043 ± 0.0010 |')
  t.is(lines[at + 2], '|  | ratio | 2.0x faster | 10x |  | 50x faster |')
  const fifty = lines.indexOf('| 50 | study | 16.72 ± 4.67 | 63,167.6 | 100.0% | 0.063 ± 0.034 |')
  t.is(lines[fifty + 1], '|  | Myriad | — | — | — | — |', 'an N not measured says so')
  t.true(text.includes('| 1,000 | study | 20.24 ± 6.99 | 69,250.7 | 100.0% | 0.043 ± 0.003 |'))
  t.true(text.includes('| 5,000 | study | 26.36 ± 9.10 | 61,559.5 | 100.0% | 0.042 ± 0.003 |'))
  const head = reportHead(text)
  t.true(head.includes('| 10 | study |') && !head.includes('Synchronous'), 'the printed head is the title and the study table')
})

test('the sync-vs-async table, the simulation summary and every suite verdict', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-report-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const text = await writeReport(results, dir)
  const lines = text.split('\n')
  const at = lines.indexOf('| 100 | document | 10.1 s | 0.50 s | 85 MB |')
  t.true(at > 0)
  t.is(lines[at + 1], '|  | Myriad | 10.1 s | 0.13 s (concurrency 1,000) | 40 MB heap |')
  t.is(lines[at + 2], '|  | ratio | 1.0x faster | 4.0x faster |  |')
  t.true(text.includes('| 1,000,000 | document | 27.8 h | 2.5 h | ~12 GB |'))
  t.true(text.includes('| mixed | 100,000 | plain | 0.50 | 13.100 | 940 | 0 |'))
  t.regex(text, /### registry: 1 PASS, 1 MISS/)
  t.regex(text, /- `MISS` batched/)
})

test('the charts are SVG from Vega-Lite specs and draw their data when rendered to pixels', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-report-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const text = await writeReport(results, dir)
  const files = readdirSync(join(dir, 'charts')).sort()
  t.deepEqual(files, ['bus-throughput.svg', 'matching-latency.svg', 'registry-throughput.svg', 'simulation-rss.svg', 'sink-throughput.svg'])
  for (const file of files) {
    t.true(text.includes(`](charts/${file})`), `${file} is in the report`)
    const svg = readFileSync(join(dir, 'charts', file), 'utf8')
    t.true(svg.startsWith('<svg'), file)
    t.regex(svg, /class="mark-(line|symbol|rect)/, `${file} has data marks`)
    const image = new Resvg(svg, { background: 'white' }).render()
    const pixels = image.pixels
    let coloured = 0
    // Pixels that are neither white nor grey: the coloured marks (lines, points, bars), not the axes.
    for (let i = 0; i < pixels.length; i += 4)
      if (Math.max(pixels[i], pixels[i + 1], pixels[i + 2]) - Math.min(pixels[i], pixels[i + 1], pixels[i + 2]) > 60) coloured++
    t.true(coloured > 200, `${file}: ${coloured} coloured pixels`)
  }
  t.regex(readFileSync(join(dir, 'charts', 'matching-latency.svg'), 'utf8'), /MAMA study/)
})
