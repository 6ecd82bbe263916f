// `npm run bench [-- --suite NAME] [--extended] [--quick] [--n 10,50] [--iterations K]`
//
// Runs the suites, prints a markdown table per suite (with its notes and PASS/MISS lines against
// the issue's targets), and merges the rows into bench/results/latest.json:
//
//   { machine: { cpu, cores, memory_gib, os, node, simd, onnxruntime },
//     started: ISO time of this run,
//     suites: { <suite>: { title, rows: [...], notes: [...], verdicts: [...], options, machine, finished } } }
//
// A suite that runs replaces its own entry; the other suites' entries are kept as they are (each
// carries the machine it ran on). A suite that throws is reported, leaves its old entry alone,
// and makes the process exit 1 after the other suites ran.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'

import { ROOT, USAGE, describeMachine, markdownTable, parseArgs, prng, progress, type Machine, type Row, type Suite } from './harness.js'
import { type ResultsFile, reportHead, writeReport } from './report/index.js'
import { async } from './suites/async.js'
import { bus } from './suites/bus.js'
import { matching } from './suites/matching.js'
import { policy } from './suites/policy.js'
import { registry } from './suites/registry.js'
import { scan } from './suites/scan.js'
import { simulation } from './suites/simulation.js'
import { sink } from './suites/sink.js'
import { steering } from './suites/steering.js'

/** Every suite, in run order. Later suites (sink, async) are one module each, added here. */
const SUITES: Suite[] = [matching, scan, registry, policy, bus, sink, async, simulation, steering]
const RESULTS = join(ROOT, 'bench', 'results', 'latest.json')

interface SuiteResult {
  title: string
  rows: Row[]
  notes: string[]
  verdicts: string[]
  options: object
  machine: Machine
  finished: string
}

interface Results {
  machine: Machine
  started: string
  suites: Record<string, SuiteResult>
}

function readResults(machine: Machine, started: string): Results {
  const fresh: Results = { machine, started, suites: {} }
  if (!existsSync(RESULTS)) return fresh
  try {
    const old = JSON.parse(readFileSync(RESULTS, 'utf8')) as Partial<Results>
    return { machine, started, suites: old.suites && typeof old.suites === 'object' ? old.suites : {} }
  } catch (e) {
    process.stderr.write(`[bench] ${RESULTS} is not readable JSON (${String(e)}); starting a new file\n`)
    return fresh
  }
}

/** Written through a temporary file and a rename, so an interrupted run leaves the old file whole. */
function writeResults(results: Results) {
  mkdirSync(dirname(RESULTS), { recursive: true })
  const tmp = `${RESULTS}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(results, null, 2)}\n`)
  renameSync(tmp, RESULTS)
}

/** Writes bench/results/report.md from the results file and prints its head. */
async function report(): Promise<void> {
  if (!existsSync(RESULTS)) return
  const text = await writeReport(JSON.parse(readFileSync(RESULTS, 'utf8')) as ResultsFile, dirname(RESULTS))
  console.log(`${reportHead(text)}\n\nreport: ${relative(process.cwd(), join(dirname(RESULTS), 'report.md'))} (with its charts in bench/results/charts/)`)
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2)
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`${USAGE}\n  --report         only write bench/results/report.md from the results file\nsuites: ${SUITES.map((s) => s.name).join(', ')}`)
    return 0
  }
  if (argv.includes('--report')) {
    await report()
    return 0
  }
  const opts = parseArgs(argv)
  const chosen = opts.suite ? SUITES.filter((s) => s.name === opts.suite) : SUITES
  if (chosen.length === 0) throw new Error(`no suite '${opts.suite}'; suites: ${SUITES.map((s) => s.name).join(', ')}`)
  const machine = describeMachine()
  const started = new Date().toISOString()
  const mode = opts.quick ? 'quick' : opts.extended ? 'extended' : 'default'
  console.log(
    `# Myriad bench (${mode}) — ${machine.cpu}, ${machine.cores} cores, ${machine.memory_gib} GiB, ${machine.os}, node ${machine.node}, ONNX Runtime ${machine.onnxruntime}, SIMD ${machine.simd}\n`,
  )
  let failed = 0
  for (const [i, suite] of chosen.entries()) {
    const log = progress(suite.name)
    log(`suite ${i + 1}/${chosen.length}: ${suite.title}`)
    const notes: string[] = []
    let rows: Row[]
    try {
      rows = await suite.run({ opts, progress: log, rand: prng, note: (line) => notes.push(line) })
    } catch (e) {
      failed++
      console.log(`## ${suite.name}: FAILED\n\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
      continue
    }
    const verdicts = suite.verdicts?.(rows) ?? []
    // Read-modify-write per suite: another suite's entry written meanwhile is kept.
    const results = readResults(machine, started)
    results.suites[suite.name] = { title: suite.title, rows, notes, verdicts, options: opts, machine, finished: new Date().toISOString() }
    writeResults(results)
    console.log(`## ${suite.name}: ${suite.title}\n\n${markdownTable(suite.columns, rows)}\n`)
    for (const line of [...notes, ...verdicts]) console.log(line)
    console.log('')
  }
  const ran = chosen.length - failed
  console.log(`${ran} suite(s) merged into ${relative(process.cwd(), RESULTS) || RESULTS}${failed ? `; ${failed} failed (their previous rows kept)` : ''}\n`)
  await report()
  return failed ? 1 : 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (e) => {
    console.error(e instanceof Error ? e.message : e)
    process.exitCode = 2
  },
)
