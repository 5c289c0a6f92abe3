/**
 * Node flags every node process runs with: `cortensord start` puts itself under them if it was
 * started without (see `cli.ts`), and the devnet passes them to the nodes it spawns.
 *
 * `--max-semi-space-size=8` (MiB): V8 sizes the young generation from the heap limit, up to
 * 2 × 64 MiB on a host with 16 GB or more, and a node grows it to that while it loads its
 * modules. A node is never idle enough for V8's memory reducer to shrink it again (timers,
 * gossip, chain polling), so it kept ~110 MB resident for nothing. 8 MiB semi-spaces start a
 * node no slower (fewer pages touched) and its steady load (gossip, streams) fits them.
 * V8 fixes the limit when the process starts: no call made later changes it.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8']
