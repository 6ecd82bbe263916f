// Installing as a user does: the packed main package and the packed linux-x64 platform package
// (with Myriad's binary and its ONNX Runtime library) go into an empty project, with no Rust
// toolchain on PATH; npm fetches only npm packages (no onnxruntime-node, so no CUDA download),
// and a small experiment runs from there. And the release workflow builds and publishes what
// package.json says: one build per `napi.targets` entry, each platform package with its library.
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'

import test from 'ava'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string
  dependencies: Record<string, string>
  napi: { targets: string[] }
}

function bytesUnder(dir: string): number {
  let total = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) total += bytesUnder(path)
    else if (entry.isFile()) total += statSync(path).size
  }
  return total
}

test('packed packages install into an empty project without Rust and run an experiment there', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'myriad-install-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  // The main package as `npm publish` would send it.
  const packed = await run('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: root })
  const main = join(work, packed.stdout.trim().split('\n').at(-1) ?? '')
  // The linux-x64 platform package as the release workflow fills it (napi artifacts + copy-ort).
  const platform = join(work, 'platform')
  mkdirSync(platform)
  cpSync(join(root, 'npm', 'linux-x64-gnu'), platform, { recursive: true })
  for (const file of ['myriad.linux-x64-gnu.node', 'libonnxruntime.so.1']) cpSync(join(root, 'native', file), join(platform, file))
  const packedPlatform = await run('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: platform })
  const platformTgz = join(work, packedPlatform.stdout.trim().split('\n').at(-1) ?? '')

  const project = join(work, 'project')
  mkdirSync(project)
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'a-user-project', private: true, type: 'module' }))
  // No Rust: PATH without cargo's directory; and the user's npm config, not this repository's .npmrc.
  const PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((d) => !existsSync(join(d, 'cargo')) && !existsSync(join(d, 'rustc')))
    .join(delimiter)
  const user = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'ORT_DYLIB_PATH'))
  const env = { ...user, PATH, npm_config_userconfig: join(work, 'npmrc') }
  await t.throwsAsync(run('cargo', ['--version'], { env }), undefined, 'cargo is not on PATH')
  const installed = await run('npm', ['install', '--no-audit', '--no-fund', main, platformTgz], { cwd: project, env, timeout: 240_000 })
  t.notRegex(installed.stderr, /onnxruntime|nuget|cuda/i)
  const modules = join(project, 'node_modules')
  t.false(existsSync(join(modules, 'onnxruntime-node')), 'onnxruntime-node is not installed')
  t.true(existsSync(join(modules, '@myriad-agents', 'core-linux-x64-gnu', 'libonnxruntime.so.1')))
  const mb = bytesUnder(modules) / 2 ** 20
  t.log(
    `node_modules: ${mb.toFixed(1)} MB (the platform package ${(bytesUnder(join(modules, '@myriad-agents', 'core-linux-x64-gnu')) / 2 ** 20).toFixed(1)} MB)`,
  )
  // What a user's project weighs with Myriad in it (90.5 MB on 2026-12-07; the parts are in
  // docs/getting-started.md): this bound catches a platform's libraries or a heavy dependency
  // creeping in, e.g. onnxruntime-node's 290 MB.
  t.true(mb < 100, `${mb.toFixed(1)} MB`)

  const probe = await run(
    process.execPath,
    ['--input-type=module', '-e', `import { initRuntime } from '@myriad-agents/core'; console.log(JSON.stringify(initRuntime()))`],
    {
      cwd: project,
      env,
    },
  )
  const info = JSON.parse(probe.stdout) as { path: string; version: string }
  t.is(info.path, join(modules, '@myriad-agents', 'core-linux-x64-gnu', 'libonnxruntime.so.1'))
  const bin = join(modules, '.bin', 'myriad')
  t.is((await run(bin, ['--version'], { cwd: project, env })).stdout.trim(), pkg.version)
  await run(bin, ['init'], { cwd: project, env })
  const ran = await run(bin, ['run', '--ticks', '2', '--set', 'agents.population.0.count=20'], { cwd: project, env, timeout: 120_000 })
  t.regex(ran.stdout, /done: mutual-aid\/\S+: 2 ticks, 40 turns/)
  t.regex(ran.stdout, /0 lost/)
})

test('the release workflow builds every napi target and ships each platform package with its ONNX Runtime library', (t) => {
  const workflow = readFileSync(join(root, '.github', 'workflows', 'release.yml'), 'utf8')
  const matrixTargets = [...workflow.matchAll(/^\s+target: (\S+)$/gm)].map((m) => m[1])
  t.deepEqual([...matrixTargets].sort(), [...pkg.napi.targets].sort(), 'one build per napi.targets entry')
  t.regex(workflow, /npx napi artifacts --output-dir artifacts --npm-dir npm\n[\s\S]*node scripts\/copy-ort\.mjs --npm-dir npm/)
  t.regex(workflow, /npx napi pre-publish -t npm/)
  t.regex(workflow, /npm publish --access public --provenance/)
  t.false('onnxruntime-node' in pkg.dependencies, 'not a runtime dependency: nothing downloads CUDA files on install')
  const dirs = readdirSync(join(root, 'npm'))
  t.is(dirs.length, pkg.napi.targets.length)
  for (const dir of dirs) {
    const platform = JSON.parse(readFileSync(join(root, 'npm', dir, 'package.json'), 'utf8')) as { name: string; files: string[]; main: string }
    t.is(platform.name, `@myriad-agents/core-${dir}`)
    t.true(platform.files.includes(platform.main), `${dir} ships its binary`)
    t.true(
      platform.files.some((f) => /onnxruntime/.test(f)),
      `${dir} ships its ONNX Runtime library`,
    )
  }
})
