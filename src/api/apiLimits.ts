/**
 * How much of the node one client may hold, and how long a request may take to arrive. A client
 * is its bearer token (its id, `tok_…`), or its IP when the node takes no tokens.
 */
export interface ApiLimits {
  /** Requests one client may have in flight, counted from their first byte (a slow body holds its slot). */
  perTokenConcurrency: number
  /** Requests in flight over every client together: the node's own ceiling, larger than one client's share. */
  maxConcurrentRequests: number
  /** Requests one client may start per minute. */
  perTokenRequestsPerMinute: number
  /** Longest a request (headers and body) may take to arrive: past it the client gets 408 and its connection is closed. */
  requestTimeoutMs: number
  /** Longest the headers of a request may take to arrive (no longer than `requestTimeoutMs`). */
  headersTimeoutMs: number
  /** How long an idle keep-alive connection stays open for the client's next request. */
  keepAliveTimeoutMs: number
}

/**
 * - 16 requests in flight per client: a completion holds its slot for seconds while miners work,
 *   and an application with 16 at once already keeps a small network busy; 16 clients can use
 *   the whole node together.
 * - 256 in flight in all: what the node held before per-client limits; each is a socket and a
 *   small buffer, far below what exhausts memory or file descriptors.
 * - 600 requests a minute per client (10/s sustained): far above what a client waiting for its
 *   answers sends, low enough that a looping script cannot flood the oracle's actors.
 * - 30 s for a request to arrive: bodies are at most 256 KiB, which even a slow link sends in
 *   well under that; a dripping client is cut there instead of at Node's default of 300 s.
 * - 10 s for the headers: a few hundred bytes.
 * - 5 s keep-alive: Node's default; clients reuse their connection between quick requests.
 */
export const API_LIMIT_DEFAULTS: Readonly<ApiLimits> = Object.freeze({
  perTokenConcurrency: 16,
  maxConcurrentRequests: 256,
  perTokenRequestsPerMinute: 600,
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000
})
