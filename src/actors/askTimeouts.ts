/** Named ask timeouts (Akka style): every `ask` in the project uses one of these. */
export const ASK_TIMEOUT_MS = {
  chainRead: 15_000,
  chainSend: 120_000,
  modelEnsure: 30 * 60_000,
  inferenceRun: 10 * 60_000,
  status: 2_000
} as const
