#!/usr/bin/env node
// The ONNX Runtime library travels beside Myriad's own binary, so installing Myriad downloads
// nothing but npm packages (onnxruntime-node's install script would fetch CUDA files from NuGet,
// and its package holds every platform's libraries: ~290 MB). It is taken from onnxruntime-node
// (a devDependency) at build time:
//   node scripts/copy-ort.mjs                  this platform's library into native/ (source builds)
//   node scripts/copy-ort.mjs --npm-dir npm    each platform package's library into npm/<platform>/
// Keep LIBRARIES in step with src/native/onnx-runtime.ts and the platform packages' "files".
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
/** Platform package directory under npm/ -> [onnxruntime-node's platform/arch, the library's file name]. */
export const LIBRARIES = {
  'linux-x64-gnu': ['linux/x64', 'libonnxruntime.so.1'],
  'linux-arm64-gnu': ['linux/arm64', 'libonnxruntime.so.1'],
  'darwin-arm64': ['darwin/arm64', 'libonnxruntime.1.dylib'],
  'darwin-x64': ['darwin/x64', 'libonnxruntime.1.dylib'],
  'win32-x64-msvc': ['win32/x64', 'onnxruntime.dll'],
}

const ortDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'))
const source = (platformArch, name) => join(ortDir, 'bin', 'napi-v6', platformArch, name)
const args = process.argv.slice(2)
const npmArg = args.indexOf('--npm-dir')

if (npmArg >= 0) {
  const npmDir = join(ROOT, args[npmArg + 1] ?? 'npm')
  for (const [pkg, [platformArch, name]] of Object.entries(LIBRARIES)) {
    const from = source(platformArch, name)
    if (!existsSync(from)) {
      console.error(`[copy-ort] onnxruntime-node has no ${from}`)
      process.exit(1)
    }
    copyFileSync(from, join(npmDir, pkg, name))
    // `napi create-npm-dirs` writes these package.json files afresh: the library joins "files" here.
    const manifest = join(npmDir, pkg, 'package.json')
    const json = JSON.parse(readFileSync(manifest, 'utf8'))
    if (!json.files.includes(name)) writeFileSync(manifest, `${JSON.stringify({ ...json, files: [...json.files, name] }, null, 2)}\n`)
    console.log(`[copy-ort] ${join(args[npmArg + 1] ?? 'npm', pkg, name)}`)
  }
} else {
  const abi = process.platform === 'linux' ? '-gnu' : process.platform === 'win32' ? '-msvc' : ''
  const entry = LIBRARIES[`${process.platform}-${process.arch}${abi}`]
  if (!entry) {
    console.error(`[copy-ort] no ONNX Runtime library is known for ${process.platform}-${process.arch}; set ORT_DYLIB_PATH at run time`)
    process.exit(0)
  }
  const [platformArch, name] = entry
  copyFileSync(source(platformArch, name), join(ROOT, 'native', name))
  console.log(`[copy-ort] native/${name}`)
}
