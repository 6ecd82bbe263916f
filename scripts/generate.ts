// `npm run generate`: writes the generated files (the TypeScript error codes, docs/reference/, the
// example blocks of README.md and docs/). `--check` writes nothing and exits 1 if any is stale.
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

import { ROOT, generatedFiles, staleFiles } from './reference.js'

if (process.argv.includes('--check')) {
  const stale = staleFiles()
  if (stale.length) {
    console.error(`stale generated files (run npm run generate): ${stale.join(', ')}`)
    process.exit(1)
  }
  console.log('generated files are up to date')
} else {
  for (const [path, content] of generatedFiles()) {
    mkdirSync(dirname(join(ROOT, path)), { recursive: true })
    writeFileSync(join(ROOT, path), content)
  }
  console.log(`wrote ${[...generatedFiles().keys()].join(', ')}`)
}
