// The house rules of src/: a folder per concept with an index.ts as its face, no source at the
// repository root, and no import cycles (type-only imports included).
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'

import test from 'ava'

const root = join(import.meta.dirname, '..')
const src = join(root, 'src')

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return name.endsWith('.ts') ? [path] : []
  })
}

/** Every relative module a file imports or re-exports, `import type` and `export type` included. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'/g), ...text.matchAll(/import\('(\.[^']+)'\)/g)].map((m) => m[1])
  return specifiers.map((s) => normalize(join(dirname(file), s.replace(/\.js$/, '.ts'))))
}

test('src/ has a folder per concept, each with an index.ts, and only index.ts at its top', (t) => {
  const top = readdirSync(src)
  t.deepEqual(
    top.filter((name) => !statSync(join(src, name)).isDirectory()),
    ['index.ts'],
  )
  for (const folder of top.filter((name) => statSync(join(src, name)).isDirectory())) {
    t.true(existsSync(join(src, folder, 'index.ts')), `src/${folder}/index.ts`)
  }
  for (const concept of ['matching', 'registry', 'policy', 'bus', 'sink', 'llm', 'native', 'errors', 'testing', 'cli']) t.true(top.includes(concept), concept)
})

test('the repository root holds no TypeScript or JavaScript source', (t) => {
  const sources = readdirSync(root).filter((name) => /\.(ts|js|mjs|cjs)$/.test(name))
  t.deepEqual(sources, [])
})

test('no import cycles in src/, type-only imports included', (t) => {
  const files = sourceFiles(src)
  const graph = new Map(files.map((f) => [f, importsOf(f)]))
  for (const [file, deps] of graph)
    for (const dep of deps) t.true(graph.has(dep), `${relative(root, file)} imports ${relative(root, dep)}, which does not exist`)
  const state = new Map<string, 'visiting' | 'done'>()
  const cycles: string[] = []
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return
    if (state.get(file) === 'visiting') {
      cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(root, f)).join(' -> '))
      return
    }
    state.set(file, 'visiting')
    for (const dep of graph.get(file) ?? []) visit(dep, [...path, file])
    state.set(file, 'done')
  }
  for (const file of files) visit(file, [])
  t.deepEqual(cycles, [])
})

test('the cycle check sees type-only imports and re-exports', (t) => {
  const file = join(src, 'registry', 'pml.ts')
  t.true(importsOf(file).includes(join(src, 'errors', 'index.ts')), 'pml.ts imports the PmlErrorCode type from errors/')
  t.true(importsOf(join(src, 'index.ts')).includes(join(src, 'matching', 'index.ts')))
})
