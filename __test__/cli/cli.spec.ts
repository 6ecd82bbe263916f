// The `myriad` command as a user meets it: the compiled bin (dist/cli/index.js) in a project
// directory where @myriad-agents/core is installed (a link to this package). init writes a
// runnable experiment, run runs it and its records are read back, bad input is refused with exit
// code 2 and nothing written, Ctrl-C stops with every record flushed, and every command has --help.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import test from 'ava'

import { readArchive } from '../../src/index.js'

const root = join(import.meta.dirname, '..', '..')
const bin = join(root, 'dist', 'cli', 'index.js')

interface Ran {
  code: number
  stdout: string
  stderr: string
}

function myriad(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MYRIAD_')))
    execFile(process.execPath, [bin, ...args], { cwd, env: { ...clean, ...env }, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

/** An empty project with the package installed, as `npm install @myriad-agents/core` leaves it. */
function project(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-cli-'))
  mkdirSync(join(dir, 'node_modules', '@myriad-agents'), { recursive: true })
  symlinkSync(root, join(dir, 'node_modules', '@myriad-agents', 'core'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Resolves once `output()` (a `--json` run's stdout so far) holds `n` tick lines. */
function ticksIn(output: () => string, n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = setInterval(() => {
      if ((output().match(/"type":"tick"/g) ?? []).length >= n) {
        clearInterval(check)
        resolve()
      }
    }, 20)
  })
}

function runDirs(dir: string, name: string): string[] {
  const base = join(dir, 'runs', name)
  return existsSync(base) ? readdirSync(base).map((r) => join(base, r)) : []
}

test('myriad init && myriad run: the written experiment runs and its records are in the archive', async (t) => {
  const dir = project(t)
  const init = await myriad(['init'], dir)
  t.is(init.code, 0, init.stderr)
  for (const f of ['experiment.yaml', 'agents.ts', 'experiment.schema.json', 'package.json']) t.true(existsSync(join(dir, f)), f)
  t.regex(init.stdout, /next: myriad run/)
  t.is((await myriad(['init'], dir)).code, 2, 'a second init leaves the files alone')

  const ran = await myriad(['run'], dir)
  t.is(ran.code, 0, ran.stderr)
  t.regex(ran.stdout, /mutual-aid tick 5\/5: 100 turns/)
  t.regex(ran.stdout, /done: mutual-aid\/\S+: 5 ticks, 500 turns/)
  t.regex(ran.stdout, /0 lost/)
  const [runDir] = runDirs(dir, 'mutual-aid')
  const agents = await readArchive(runDir, { table: 'agents' })
  t.is(agents.length, 100)
  t.is((agents[0].profile as { type: string }).type, 'citizen')
  const calls = await readArchive(runDir, { table: 'llm_calls' })
  t.true(calls.length > 0, 'citizens answered questions with the test server')
  t.true(calls.every((c) => c.outcome === 'ok'))
  const messages = await readArchive(runDir, { table: 'messages' })
  t.true(messages.some((m) => m.kind === 'question') && messages.some((m) => m.kind === 'answer'))
  const states = (await readArchive(runDir, { table: 'states' })).filter((s) => s.tick === 4)
  t.true(states.length > 0)
})

test('myriad run --json: a JSON object per tick, then the summary; flags and MYRIAD_* override the file', async (t) => {
  const dir = project(t)
  await myriad(['init'], dir)
  const ran = await myriad(['run', 'experiment.yaml', '--json', '--ticks', '3', '--set', 'agents.population.0.count=40'], dir, { MYRIAD_SEED: '9' })
  t.is(ran.code, 0, ran.stderr)
  const lines = ran.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; tick?: number; turns?: number; ticks?: number })
  t.deepEqual(
    lines.map((l) => l.type),
    ['tick', 'tick', 'tick', 'summary'],
  )
  t.deepEqual(
    lines.slice(0, 3).map((l) => [l.tick, l.turns]),
    [
      [0, 40],
      [1, 40],
      [2, 40],
    ],
  )
  t.is(lines[3].ticks, 3)
  const show = await myriad(['config', 'show', '--ticks', '3'], dir, { MYRIAD_SEED: '9' })
  t.regex(show.stdout, /seed: 9 # env MYRIAD_SEED/)
  t.regex(show.stdout, /ticks: 3 # --ticks/)
})

test('bad input is refused with exit code 2, a clear message and nothing written', async (t) => {
  const dir = project(t)
  await myriad(['init'], dir)
  const good = readFileSync(join(dir, 'experiment.yaml'), 'utf8')
  writeFileSync(join(dir, 'none.ts'), 'export const nothing = 1\n')
  const cases: [string, string, RegExp][] = [
    ['broken-yaml', 'experiment:\n  name: x\n  ticks: [1\n', /ERR_CONFIG: broken-yaml\.yaml:\d+:\d+: invalid YAML/],
    [
      'wrong-type',
      good.replace('count: 100', 'count: many'),
      /ERR_CONFIG: wrong-type\.yaml:\d+:\d+: agents\.population\.0\.count: expected number, got string "many"/,
    ],
    ['unknown-key', good.replace('  ticks: 5', '  tick: 5'), /unknown key 'tick': did you mean 'ticks'\?/],
    ['missing-module', good.replace('./agents.ts', './gone.ts'), /ERR_AGENTS_MODULE: the agents module \S+gone\.ts does not exist/],
    ['no-agent', good.replace('./agents.ts', './none.ts'), /ERR_AGENTS_MODULE: the agents module \S+none\.ts exports no agent type/],
    ['bad-profile', good.replace('profiles: citizens', ''), /ERR_AGENT_PROFILE: population\[0\] \(citizen\) profile 0/],
    [
      'no-llm',
      good.replace(/testServer:\n {2}latencyMs: 50\n/, '').replace('- name: local', '- name: local\n      baseUrl: http://127.0.0.1:9/v1'),
      /ERR_LLM_UNREACHABLE: LLM provider 'local' at http:\/\/127\.0\.0\.1:9 does not answer/,
    ],
    ['secret', good.replace('- name: local', '- name: local\n      apiKey: sk-123'), /llm\.providers\.0\.apiKey: a secret is not written in the file/],
  ]
  for (const [name, text, message] of cases) {
    writeFileSync(join(dir, `${name}.yaml`), text)
    const ran = await myriad(['run', `${name}.yaml`], dir)
    t.is(ran.code, 2, `${name}: ${ran.stderr}`)
    t.regex(ran.stderr, message, name)
  }
  t.deepEqual(runDirs(dir, 'mutual-aid'), [], 'nothing was written')

  writeFileSync(join(dir, 'fixed.yaml'), `${good}\nsink:\n  archive: ./runs/fixed\n`)
  t.is((await myriad(['run', 'fixed.yaml', '--ticks', '1'], dir)).code, 0)
  const again = await myriad(['run', 'fixed.yaml', '--ticks', '1'], dir)
  t.is(again.code, 2)
  t.regex(again.stderr, /the run directory \S+fixed holds records already: nothing written \(--overwrite replaces them/)
  const overwritten = await myriad(['run', 'fixed.yaml', '--ticks', '1', '--overwrite'], dir)
  t.is(overwritten.code, 0, overwritten.stderr)
  t.is((await readArchive(join(dir, 'runs', 'fixed'), { table: 'agents' })).length, 100, 'one run, not two')
})

test('Ctrl-C stops after the tick in flight with every record flushed, exit code 130', async (t) => {
  const dir = project(t)
  await myriad(['init'], dir)
  const child: ChildProcess = spawn(process.execPath, [bin, 'run', '--ticks', '1000', '--json'], { cwd: dir })
  let out = ''
  child.stdout?.on('data', (d) => {
    out += d
  })
  // Interrupt once a few ticks have run.
  await ticksIn(() => out, 3)
  child.kill('SIGINT')
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.is(code, 130)
  const lines = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; stopped?: boolean; ticks?: number; text?: string; records?: { rows: number } })
  const summary = lines.find((l) => l.type === 'summary')
  t.true(summary?.stopped)
  t.true((summary?.ticks ?? 0) >= 3 && (summary?.ticks ?? 0) < 1000)
  t.regex(lines.at(-1)?.text ?? '', /stopped after \d+ of 1000 ticks; the records above are complete/)
  const [runDir] = runDirs(dir, 'mutual-aid')
  const metrics = await readArchive(runDir, { table: 'metrics' })
  const ticks = new Set(metrics.map((m) => m.tick))
  t.is(ticks.size, summary?.ticks ?? -1, 'every tick that ran is recorded')
  const rows = (['agents', 'states', 'messages', 'metrics', 'llm_calls', 'errors'] as const).map((table) => readArchive(runDir, { table }))
  t.is(
    (await Promise.all(rows)).reduce((n, r) => n + r.length, 0),
    summary?.records?.rows ?? -1,
  )
})

test('with a checkpoint section, Ctrl-C leaves a checkpoint and myriad run --resume goes on to the end, each tick recorded once', async (t) => {
  const dir = project(t)
  await myriad(['init'], dir)
  writeFileSync(join(dir, 'experiment.yaml'), `${readFileSync(join(dir, 'experiment.yaml'), 'utf8')}\ncheckpoint:\n  every: 50\n  dir: checkpoints\n`)
  const child: ChildProcess = spawn(process.execPath, [bin, 'run', '--ticks', '8', '--json', '--set', 'testServer.latencyMs=300'], { cwd: dir })
  let out = ''
  child.stdout?.on('data', (d) => {
    out += d
  })
  await ticksIn(() => out, 2)
  child.kill('SIGINT')
  t.is(await new Promise<number | null>((resolve) => child.on('exit', resolve)), 130)
  const last = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { text?: string }
  const hint = /myriad run --resume (\S+)/.exec(last.text ?? '')
  t.truthy(hint, last.text)
  const resumed = await myriad(['run', '--resume', hint?.[1] ?? '', '--ticks', '8', '--json'], dir)
  t.is(resumed.code, 0, resumed.stderr)
  const summary = resumed.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; ticks?: number; resumedFrom?: number; turns?: number })
    .find((l) => l.type === 'summary')
  t.is(summary?.ticks, 8)
  t.is(summary?.turns, 800)
  t.true((summary?.resumedFrom ?? 0) >= 2 && (summary?.resumedFrom ?? 9) < 8)
  const [runDir] = runDirs(dir, 'mutual-aid')
  const turns = (await readArchive(runDir, { table: 'metrics' })).filter((m) => m.name === 'turns').map((m) => m.tick)
  t.deepEqual(turns.sort(), [0, 1, 2, 3, 4, 5, 6, 7], 'each tick recorded once')
})

test('every command answers --help with its usage and examples; --version; unknown commands', async (t) => {
  const dir = project(t)
  const top = await myriad(['--help'], dir)
  t.is(top.code, 0)
  for (const name of ['init', 'run', 'config', 'llm-server', 'bench', 'db']) {
    t.regex(top.stdout, new RegExp(`\\n {2}${name} `), name)
    const help = await myriad([name, '--help'], dir)
    t.is(help.code, 0, name)
    t.regex(help.stdout, /usage:/, name)
    t.regex(help.stdout, /examples:/, name)
  }
  const version = await myriad(['--version'], dir)
  t.is(version.stdout.trim(), JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version)
  const unknown = await myriad(['frobnicate'], dir)
  t.is(unknown.code, 2)
  t.regex(unknown.stderr, /unknown command 'frobnicate'/)
})

test('myriad config schema prints the JSON Schema that init writes beside the file', async (t) => {
  const dir = project(t)
  await myriad(['init'], dir)
  const printed = await myriad(['config', 'schema'], dir)
  t.deepEqual(JSON.parse(printed.stdout), JSON.parse(readFileSync(join(dir, 'experiment.schema.json'), 'utf8')))
  t.regex(readFileSync(join(dir, 'experiment.yaml'), 'utf8'), /yaml-language-server: \$schema=\.\/experiment\.schema\.json/)
  const check = await myriad(['config', 'check'], dir)
  t.is(check.code, 0, check.stderr)
  t.regex(check.stdout, /experiment\.yaml: ok \(100 agents of 1 entries, 5 ticks\)/)
})

test('myriad llm-server serves chat completions, JSON replies and faults from flags', async (t) => {
  const dir = project(t)
  const child = spawn(process.execPath, [bin, 'llm-server', '--port', '0', '--json-reply', '{"answer":"yes"}', '--latency-ms', '5'], { cwd: dir })
  t.teardown(() => child.kill('SIGTERM'))
  const url = await new Promise<string>((resolve) => child.stdout.once('data', (d) => resolve(JSON.parse(String(d)).url)))
  const res = await fetch(`${url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'ok?' }] }),
  })
  const body = (await res.json()) as { choices: { message: { content: string } }[] }
  t.deepEqual(JSON.parse(body.choices[0].message.content), { answer: 'yes' })
  child.kill('SIGINT')
  t.is(await new Promise<number | null>((resolve) => child.on('exit', resolve)), 0)
  const bad = await myriad(['llm-server', '--latency-ms', 'slow'], dir)
  t.is(bad.code, 2)
  t.regex(bad.stderr, /ERR_INVALID_ARG: --latency-ms needs a non-negative number/)
})
