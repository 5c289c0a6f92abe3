#!/usr/bin/env node
// The daemon is TypeScript run through tsx: no build step between a checkout and a node.
// npm scripts put the project's Node 24 (devDependency `node`) first on PATH.
import {register} from 'tsx/esm/api'

register()
await import('../src/runtime/cli.ts')
