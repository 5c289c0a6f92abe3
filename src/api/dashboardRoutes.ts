import {readFileSync} from 'node:fs'
import type {Route} from './httpApi.js'

/** Read once at start-up: the page is static; it reads the node's JSON API with the operator's token. */
const PAGE = readFileSync(new URL('./dashboard/index.html', import.meta.url), 'utf8')

/**
 * The operator's dashboard, on every role: why the node earns or not (its `earning` status); an
 * oracle's also shows the network's nodes, live tasks and each finished task's on-chain trail.
 */
export function dashboardRoutes (): Route[] {
  const page = (): {text: string, contentType: string} => ({text: PAGE, contentType: 'text/html; charset=utf-8'})
  return [
    // Open: the page holds no data; every figure on it comes from the authenticated API.
    {method: 'GET', path: '/', open: true, handler: page},
    {method: 'GET', path: '/dashboard', open: true, handler: page}
  ]
}
