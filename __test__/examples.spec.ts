// Every code block of README.md and docs/ is a file under examples/ or templates/ (synced by `npm run
// generate`), and every example file runs: as a user runs it, `node --import tsx FILE`, importing
// the package by name. Shell blocks may only name commands that exist.
import { execFile } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

import test from 'ava'

import { ROOT, examplesShown } from '../scripts/reference.js'

const run = promisify(execFile)
const scripts = Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts)

function markdownFiles(dir = 'docs'): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? markdownFiles(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : [],
  )
}
const markdown = ['README.md', ...markdownFiles()]

test('every TypeScript block in README.md and docs/ comes from an example file', (t) => {
  for (const file of markdown) {
    const lines = readFileSync(join(ROOT, file), 'utf8').split('\n')
    lines.forEach((line, i) => {
      if (/^```(ts|typescript|js|javascript|yaml)\b/.test(line)) t.regex(lines[i - 1] ?? '', /^<!-- example: \S+ -->$/, `${file}:${i + 1}`)
      else if (/^```./.test(line)) t.regex(line, /^```(sh|text)$/, `${file}:${i + 1}: only ts and yaml (from a file), sh and text blocks`)
    })
  }
})

test('shell blocks name only commands that exist', (t) => {
  for (const file of markdown) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
      for (const raw of block[1].split('\n')) {
        const line = raw.replace(/#.*$/, '').trim()
        if (!line) continue
        for (const command of line.split('&&').map((c) => c.trim())) {
          const npmRun = /^npm run ([\w:-]+)/.exec(command)
          if (npmRun) t.true(scripts.includes(npmRun[1]), `${file}: npm run ${npmRun[1]} is not a script`)
          else t.regex(command, /^(npm (install|test)|npx myriad|myriad) ?/, `${file}: ${command}`)
        }
      }
    }
  }
})

const examples = readdirSync(join(ROOT, 'examples', 'docs'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => `examples/docs/${f}`)

test('every example file is shown in the docs', (t) => {
  t.true(examples.length > 5)
  t.deepEqual(
    examples.filter((e) => !examplesShown().includes(e)),
    [],
  )
})

for (const example of examples) {
  test(`${example} runs`, async (t) => {
    const { stderr } = await run(process.execPath, ['--import', 'tsx', example], { cwd: ROOT, timeout: 120_000 })
    t.notRegex(stderr, /Error/)
  })
}
