import {registerHooks} from 'node:module'

/**
 * The entry modules of `helia` and `@helia/libp2p` import, at load, everything their
 * `createHelia()` and `withLibp2p()` put into a default node — `libp2pDefaults` (WebRTC with its
 * native addon, kad-dht, auto-TLS with an ACME client, UPnP, circuit relay, mDNS, websockets,
 * delegated routing) and `@helia/http` — to export it beside the light variants a node uses
 * (`createHeliaLight`, `withLibp2pLight`: its libp2p is configured in `host.ts`). Nothing
 * calls them, yet loading them cost every node process ~1,100 modules, ~0.8 s of CPU and ~30 MB.
 *
 * This resolve hook gives those two imports, and only from those two modules, a stand-in whose
 * functions throw if anything ever calls them. If a new version of either package imports
 * them differently, the hook no longer matches and the real modules load: slower, never wrong.
 * Installed by the command line before it loads any of helia (in-process tests, which import
 * the sources directly, load the packages whole).
 */
const STAND_INS: Array<{parent: string, specifier: string, exports: string[]}> = [
  {parent: '/node_modules/@helia/libp2p/dist/src/index.js', specifier: './utils/libp2p-defaults.js', exports: ['libp2pDefaults']},
  {parent: '/node_modules/helia/dist/src/index.js', specifier: '@helia/http', exports: ['withHTTP']}
]

function standInUrl (specifier: string, exports: string[]): string {
  const message = JSON.stringify(`${specifier} is not loaded in cortensord (see src/runtime/skipHeliaDefaults.ts)`)
  const source = exports.map(name => `export function ${name} () { throw new Error(${message}) }`).join('\n')
  return `data:text/javascript,${encodeURIComponent(source)}`
}

let installed = false

export function skipHeliaDefaults (): void {
  if (installed) return
  installed = true
  registerHooks({
    resolve (specifier, context, nextResolve) {
      const standIn = STAND_INS.find(s => s.specifier === specifier && context.parentURL?.endsWith(s.parent) === true)
      return standIn == null ? nextResolve(specifier, context) : {url: standInUrl(specifier, standIn.exports), format: 'module', shortCircuit: true}
    }
  })
}
