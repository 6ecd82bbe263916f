import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { MyriadError } from '../errors/index.js'
import { native } from './binding.js'
import { callNative } from './call.js'

export interface RuntimeInfo {
  /** The ONNX Runtime library that was loaded. */
  path: string
  /** Its version, e.g. "1.30.0". */
  version: string
}

const LIBRARY_NAMES: Partial<Record<NodeJS.Platform, string>> = {
  linux: 'libonnxruntime.so.1',
  darwin: 'libonnxruntime.1.dylib',
  win32: 'onnxruntime.dll',
}

/** The platform package this platform's binary comes in (napi-rs naming). */
function platformPackage(): string {
  const abi = process.platform === 'linux' ? '-gnu' : process.platform === 'win32' ? '-msvc' : ''
  return `@myriad-agents/core-${process.platform}-${process.arch}${abi}`
}

/**
 * Where the ONNX Runtime shared library is: `ORT_DYLIB_PATH` if set; else the copy that travels
 * with Myriad's binary (in `native/` of a source build, or in the platform package an install
 * brings); else the one of the npm package `onnxruntime-node`, if the project has it.
 */
export function onnxRuntimePath(): string {
  const fromEnv = process.env.ORT_DYLIB_PATH
  if (fromEnv) return fromEnv
  const name = LIBRARY_NAMES[process.platform]
  if (!name) {
    throw new MyriadError('ERR_ORT_NOT_FOUND', `no ONNX Runtime build is known for platform ${process.platform}; set ORT_DYLIB_PATH`)
  }
  const require = createRequire(import.meta.url)
  const candidates = [fileURLToPath(new URL(`../../native/${name}`, import.meta.url))]
  for (const [pkg, sub] of [
    [platformPackage(), ''],
    ['onnxruntime-node', join('bin', 'napi-v6', process.platform, process.arch)],
  ]) {
    try {
      candidates.push(join(dirname(require.resolve(`${pkg}/package.json`)), sub, name))
    } catch {
      // not installed: the next place
    }
  }
  const found = candidates.find((path) => existsSync(path))
  if (!found) {
    throw new MyriadError(
      'ERR_ORT_NOT_FOUND',
      `no ONNX Runtime library found (looked for ${candidates.join(', ')}): reinstall ${platformPackage()}, or set ORT_DYLIB_PATH`,
    )
  }
  return found
}

let loaded: RuntimeInfo | undefined

/**
 * Loads ONNX Runtime once per process (every `Embedder.load` calls this first). Throws
 * `ERR_ORT_NOT_FOUND` when the library is missing or older than Myriad needs.
 */
export function initRuntime(path?: string): RuntimeInfo {
  if (loaded && !path) return loaded
  loaded = callNative(() => native.initRuntime(path ?? onnxRuntimePath()))
  return loaded
}
