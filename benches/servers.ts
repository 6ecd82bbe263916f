// The OpenAI-compatible test server (src/testing/llm-server.ts) in child processes, for the suites
// that call an LLM: their CPU is not the measured process's.
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

import { ROOT } from './harness.js'

export interface Server {
  url: string
  stop(): Promise<void>
}

/** `workers` server processes on one port, each answering every call after `latencyMs`. */
export async function startLLMServers(latencyMs: number, workers: number): Promise<Server> {
  const args = ['--port', '0', '--latency-ms', String(latencyMs), '--workers', String(workers), '--control-stdin']
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/testing/llm-server.ts', ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout! })
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the LLM test server exited (${code}) before listening`)))
    lines.once('line', (line) => resolve((JSON.parse(line) as { url: string }).url))
  })
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve())
        child.stdin!.end()
      }),
  }
}
