// A real LLM for tests: llama.cpp's OpenAI-compatible llama-server with SmolLM2-135M-Instruct (Q4_1 GGUF),
// both built or extracted once by `npm run fetch-llm` into ~/.cache/myriad/llama (or $MYRIAD_LLAMA_CACHE).
// startLocalModel() starts the server on a free loopback port and resolves once it answers; a missing
// binary or model is an error that says what to run (the tests fail with why: they do not skip).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { availableParallelism, homedir } from 'node:os'
import { join } from 'node:path'

// Keep in step with scripts/fetch-llm.mjs.
const CACHE = process.env.MYRIAD_LLAMA_CACHE || join(homedir(), '.cache', 'myriad', 'llama')
export const LLAMA_SERVER = join(CACHE, 'bin', 'llama-server')
export const MODEL_FILE = join(CACHE, 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf')
/** The name the server reports in /v1/models and accepts as `model`: the GGUF's file name, less `.gguf`. */
export const MODEL_NAME = 'SmolLM2-135M-Instruct.Q4_1'

export interface LocalModel {
  /** Base URL of the OpenAI-compatible API, `http://127.0.0.1:PORT/v1`. */
  url: string
  /** The model id the server reports (MODEL_NAME). */
  model: string
  close(): Promise<void>
}

export interface LocalModelOptions {
  /** Slots decoding at once (requests beyond them queue in the server); default 4. */
  parallel?: number
  /** Context tokens, split across the slots; default 1024 per slot. */
  contextSize?: number
  /** CPU threads; default the machine's cores, at most 4. */
  threads?: number
  /** How long loading may take; default 60 s. */
  startTimeoutMs?: number
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      const port = typeof address === 'object' && address ? address.port : 0
      probe.close(() => resolve(port))
    })
  })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Starts llama-server with the cached GGUF; resolves when /health says the model is loaded. */
export async function startLocalModel(options: LocalModelOptions = {}): Promise<LocalModel> {
  for (const [what, path] of [
    ['llama-server binary', LLAMA_SERVER],
    ['SmolLM2 GGUF model', MODEL_FILE],
  ]) {
    if (!existsSync(path)) throw new Error(`the ${what} is missing (${path}): run npm run fetch-llm`)
  }
  const parallel = options.parallel ?? 4
  const threads = options.threads ?? Math.min(4, availableParallelism())
  // Another process may take the port between the probe and the server's bind: try a few ports.
  let lastError: Error | undefined
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    try {
      return await launch(port, parallel, threads, options.contextSize ?? 1024 * parallel, options.startTimeoutMs ?? 60_000)
    } catch (error) {
      lastError = error as Error
      if (!/bind|address already in use/i.test(lastError.message)) throw lastError
    }
  }
  throw lastError
}

async function launch(port: number, parallel: number, threads: number, contextSize: number, timeoutMs: number): Promise<LocalModel> {
  const args = [
    ['--model', MODEL_FILE],
    ['--alias', MODEL_NAME],
    ['--host', '127.0.0.1'],
    ['--port', String(port)],
    ['--ctx-size', String(contextSize)],
    ['--parallel', String(parallel)],
    ['--threads', String(threads)],
    ['--threads-http', String(parallel + 2)],
  ].flat()
  const child = spawn(LLAMA_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  // The last lines of its output, for the error when it does not come up.
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  let exited: string | undefined
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = signal ? `killed by ${signal}` : `exit code ${code}`
      resolve()
    })
  })
  child.once('error', (error) => {
    exited = `could not start: ${error.message}`
  })

  const close = async () => {
    if (exited === undefined) {
      child.kill('SIGTERM')
      // It finishes its slots' work first; a server that hangs is killed.
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exit
      clearTimeout(timer)
    }
  }

  const origin = `http://127.0.0.1:${port}`
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`llama-server stopped while starting (${exited}):\n${output}`)
    // 503 while the model loads, 200 once it is ready.
    const health = await fetch(`${origin}/health`).catch(() => undefined)
    if (health?.ok) {
      const models = (await (await fetch(`${origin}/v1/models`)).json()) as { data: { id: string }[] }
      const model = models.data[0]?.id
      if (!model) {
        await close()
        throw new Error(`llama-server answers but /v1/models lists no model: ${JSON.stringify(models)}`)
      }
      return { url: `${origin}/v1`, model, close }
    }
    await sleep(100)
  }
  await close()
  throw new Error(`llama-server did not answer /health within ${timeoutMs} ms:\n${output}`)
}
