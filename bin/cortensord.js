#!/usr/bin/env node
// The daemon runs from the JavaScript compiled into dist/ (`npm run build`; `npm ci` builds it).
// npm scripts put the project's Node 24 (devDependency `node`) first on PATH.
import {existsSync} from 'node:fs'

const cli = new URL('../dist/runtime/cli.js', import.meta.url)
if (!existsSync(cli)) {
  process.stderr.write('cortensord: dist/ is missing: run `npm run build` in the project folder first\n')
  process.exit(2)
}
await import(cli.href)
