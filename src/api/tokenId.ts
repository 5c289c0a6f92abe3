import {createHash} from 'node:crypto'

/**
 * What logs, metrics and the usage API call a bearer token: `tok_` and the first 8 hex digits of
 * its SHA-256. Stable across restarts, so an operator can match it to the token they handed out,
 * and it reveals nothing a log reader could authenticate with.
 */
export function tokenId (token: string): string {
  return `tok_${createHash('sha256').update(token).digest('hex').slice(0, 8)}`
}
