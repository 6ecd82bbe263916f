import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

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

/**
 * Where the ONNX Runtime shared library is: `ORT_DYLIB_PATH` if set, otherwise the copy that the
 * npm package `onnxruntime-node` ships for this platform.
 */
export function onnxRuntimePath(): string {
  const fromEnv = process.env.ORT_DYLIB_PATH
  if (fromEnv) return fromEnv
  const name = LIBRARY_NAMES[process.platform]
  if (!name) {
    throw new MyriadError('ERR_ORT_NOT_FOUND', `no ONNX Runtime build is known for platform ${process.platform}`)
  }
  let pkgDir: string
  try {
    pkgDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'))
  } catch (cause) {
    throw new MyriadError('ERR_ORT_NOT_FOUND', 'the npm package onnxruntime-node is not installed; install it or set ORT_DYLIB_PATH', { cause })
  }
  const path = join(pkgDir, 'bin', 'napi-v6', process.platform, process.arch, name)
  if (!existsSync(path)) {
    throw new MyriadError(
      'ERR_ORT_NOT_FOUND',
      `onnxruntime-node ships no ONNX Runtime for ${process.platform}/${process.arch} (looked for ${path}); set ORT_DYLIB_PATH`,
    )
  }
  return path
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
