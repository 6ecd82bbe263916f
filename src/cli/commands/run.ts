// `myriad run [experiment.yaml]`: loads the file and its agents module (TypeScript directly),
// refuses what would fail before anything is written (bad file, missing module or agent, an LLM
// that does not answer, a run directory that exists), then runs with live progress. Ctrl-C stops
// after the tick in flight with every record flushed; a second Ctrl-C quits at once.
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'

import { type LoadedConfig, TEST_SERVER_PLACEHOLDER, experimentOptions, loadConfig } from '../../config/index.js'
import { MyriadError } from '../../errors/index.js'
import { LLM } from '../../llm/index.js'
import { Experiment, type ExperimentOptions } from '../../runtime/index.js'
import { type LLMServer, latencyOf, startLLMServer } from '../../testing/index.js'
import { type Command, EXIT } from '../command.js'
import { OVERRIDE_FLAGS, OVERRIDE_USAGE, overridesOf } from '../overrides.js'
import { type Display, jsonLines, livePanel, plainLines } from '../progress.js'

export const run: Command = {
  name: 'run',
  summary: 'run an experiment file with live progress',
  usage: `usage: myriad run [file] [--json] [--overwrite] [--resume checkpoint] [overrides]

Runs the experiment that file describes (default: experiment.yaml). The agents module it names is
loaded as it is, TypeScript included. Progress is a live panel on a terminal, a line per tick
otherwise, and one JSON object per line with --json. Ctrl-C stops after the tick in flight with
every record flushed (exit code 130); a second Ctrl-C quits at once.

  --json        JSON lines: {"type":"tick",...} per tick, then {"type":"summary",...}
  --overwrite   replace the records of sink.archive when that directory holds some already
  --resume P    go on from the checkpoint P (or the newest under the directory P, e.g. the file's
                checkpoint.dir): the same records, continued from the checkpoint's tick
${OVERRIDE_USAGE}

exit codes: 0 done, 1 the run failed, 2 refused before it started (file, agents module, LLM, run
directory), 130 stopped by Ctrl-C (records flushed).

examples:
  myriad run
  myriad run experiment.yaml --ticks 20 --set concurrency.steps=512
  myriad run --resume runs/checkpoints
  MYRIAD_LLM_URL=http://127.0.0.1:8080/v1 MYRIAD_LLM_MODEL=smollm2 myriad run --json > run.jsonl`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...OVERRIDE_FLAGS, json: { type: 'boolean' }, overwrite: { type: 'boolean' }, resume: { type: 'string' } },
    })
    const file = positionals[0] ?? 'experiment.yaml'
    const loaded = loadConfig(file, { overrides: overridesOf(values) })
    const { options, ticks } = await experimentOptions(loaded)
    const server = await startTestServer(loaded, options)
    try {
      await checkLLMReachable(options)
      // A resumed run continues its records; otherwise last, since --overwrite removes the old records.
      const exp = values.resume
        ? await Experiment.resume(resolve(values.resume), options)
        : (claimRunDirectory(loaded, values.overwrite === true), new Experiment(options))
      const name = loaded.config.experiment.name
      const display: Display = values.json ? jsonLines() : process.stdout.isTTY ? livePanel(name, ticks) : plainLines(name, ticks)
      return await runWithProgress(exp, ticks, display)
    } finally {
      await server?.close()
    }
  },
}

async function runWithProgress(exp: Experiment, ticks: number, display: Display): Promise<number> {
  let interrupts = 0
  const onInterrupt = () => {
    interrupts++
    if (interrupts > 1) process.exit(EXIT.interrupted)
    const p = exp.progress()
    display.note(`stopping after tick ${p.ticks + 1}: flushing every record (Ctrl-C again quits at once, losing what is not flushed)`)
    exp.stop()
  }
  process.on('SIGINT', onInterrupt)
  exp.on('tick', (info) => display.tick(info))
  const timer = setInterval(() => display.live(exp.progress()), 250)
  try {
    display.live(exp.progress())
    const summary = await exp.run({ ticks })
    display.done(summary)
    if (summary.stopped) {
      display.note(
        summary.checkpoint
          ? `stopped after ${summary.ticks} of ${ticks} ticks; the records above are complete. To go on from the last checkpoint: myriad run --resume ${summary.checkpoint}`
          : `stopped after ${summary.ticks} of ${ticks} ticks; the records above are complete. To go on, run again (a new run), e.g. with --ticks ${ticks - summary.ticks}; with a checkpoint section the run could be resumed.`,
      )
      return EXIT.interrupted
    }
    return EXIT.ok
  } finally {
    clearInterval(timer)
    process.off('SIGINT', onInterrupt)
  }
}

/**
 * The file's `testServer`, started for the run when the first provider still points at its
 * placeholder (MYRIAD_LLM_URL or a baseUrl in the file name another endpoint): its URL goes there.
 */
async function startTestServer(loaded: LoadedConfig, options: ExperimentOptions): Promise<LLMServer | undefined> {
  const wanted = loaded.config.testServer
  const first = options.llm && !(options.llm instanceof LLM) ? options.llm.providers?.[0] : undefined
  if (!wanted || !first || first.baseUrl !== TEST_SERVER_PLACEHOLDER) return undefined
  const { latencyMs, jitterMs, seed } = wanted
  const server = await startLLMServer({ seed, latency: latencyOf(latencyMs, jitterMs) })
  first.baseUrl = server.url
  return server
}

/** An archive directory that holds records already is refused, or emptied with --overwrite. */
function claimRunDirectory(loaded: LoadedConfig, overwrite: boolean): void {
  const sink = loaded.config.sink
  if (!sink || !('archive' in sink)) return
  const dir = resolve(loaded.dir, sink.archive)
  if (!existsSync(dir) || readdirSync(dir).length === 0) return
  if (!overwrite)
    throw new MyriadError(
      'ERR_CONFIG',
      `the run directory ${dir} holds records already: nothing written (--overwrite replaces them, or choose another sink.archive)`,
    )
  rmSync(dir, { recursive: true, force: true })
}

/** Every provider's host answers a TCP connect within 3 s, before tick 0. */
async function checkLLMReachable(options: ExperimentOptions): Promise<void> {
  const providers = (options.llm && !(options.llm instanceof LLM) ? options.llm.providers : undefined) ?? []
  for (const p of providers) {
    const url = new URL(p.baseUrl)
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
    const error = await new Promise<string | undefined>((done) => {
      const socket = connect({ host: url.hostname, port, timeout: 3000 })
      socket.once('connect', () => {
        socket.destroy()
        done(undefined)
      })
      socket.once('timeout', () => {
        socket.destroy()
        done('no answer within 3 s')
      })
      socket.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message))
    })
    if (error) {
      throw new MyriadError(
        'ERR_LLM_UNREACHABLE',
        `LLM provider '${p.name}' at ${url.origin} does not answer (${error}): start it, fix llm.providers (or MYRIAD_LLM_URL), or use the file's testServer`,
      )
    }
  }
}
