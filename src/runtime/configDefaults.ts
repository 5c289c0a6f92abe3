/**
 * The defaults of the config schema's fields, for code that needs one without a config (the CLI,
 * the devnet). Apart from the schema (config.ts): a CLI command that only needs a default, such as
 * `cortensord status` run by a health check, does not load the validator.
 */
export const DEFAULTS = {
  networkId: 'devnet',
  chain: {pollingIntervalMs: 250, taskEscrowWei: '1000000000000000'},
  // Fixed ports: a restarted node keeps its dial address and API URL. Several nodes on one host
  // (the devnet, tests) each set their own ports, or 0 for any free one.
  p2p: {listen: ['/ip4/0.0.0.0/tcp/4040'], announce: [] as string[], bootstrap: [] as string[]},
  inference: {threads: 1, sequences: 2, contextSize: 512, memoryBudgetMiB: 0},
  api: {host: '127.0.0.1', port: 8040, tokens: [] as string[]},
  stats: {heartbeatIntervalMs: 2_000, chainPingIntervalMs: 60_000},
  oracle: {resultTimeoutMs: 8_000, precommitWindowS: 120, commitWindowS: 240, defaultRedundancy: 1, defaultMaxTokens: 64, verifier: 'local', auditRate: 0.1},
  logLevel: 'info',
  logFormat: 'auto'
} as const
