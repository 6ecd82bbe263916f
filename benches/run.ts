// `npm run bench [-- --suite NAME] [--extended] [--quick] [--n 10,50] [--iterations K]`
// Runs the suites, prints a markdown table per suite, and merges the rows into
// bench/results/latest.json: { machine, started, suites: { <suite>: { rows: [...] } } }.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

import { describeMachine, markdownTable, parseArgs, progress, type Row, type Suite } from './harness.js'
import { matching } from './suites/matching.js'
import { policy } from './suites/policy.js'
import { registry } from './suites/registry.js'
import { scan } from './suites/scan.js'

/** Later suites (bus, sink, async) register here. */
const SUITES: Suite[] = [matching, scan, registry, policy]
const RESULTS = 'bench/results/latest.json'

interface Results {
  machine: ReturnType<typeof describeMachine>
  started: string
  suites: Record<string, { rows: Row[]; title: string; options: object; finished: string }>
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const chosen = opts.suite ? SUITES.filter((s) => s.name === opts.suite) : SUITES
  if (chosen.length === 0) throw new Error(`no suite '${opts.suite}'; suites: ${SUITES.map((s) => s.name).join(', ')}`)
  const results: Results = existsSync(RESULTS)
    ? JSON.parse(readFileSync(RESULTS, 'utf8'))
    : { machine: describeMachine(), started: '', suites: {} }
  results.machine = describeMachine()
  results.started = new Date().toISOString()
  console.log(`# Myriad bench — ${results.machine.cpu}, ${results.machine.cores} cores, node ${results.machine.node}, ONNX Runtime ${results.machine.onnxruntime}, SIMD ${results.machine.simd}\n`)
  for (const suite of chosen) {
    const rows = await suite.run(opts, progress(suite.name))
    results.suites[suite.name] = { title: suite.title, rows, options: opts, finished: new Date().toISOString() }
    mkdirSync(dirname(RESULTS), { recursive: true })
    writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n')
    console.log(`## ${suite.name}: ${suite.title}\n\n${markdownTable(suite.columns, rows)}\n`)
    for (const line of suite.verdicts?.(rows) ?? []) console.log(line)
    console.log('')
  }
  console.log(`rows written to ${RESULTS}`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
