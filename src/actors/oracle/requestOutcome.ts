import type {CompleteReply} from './messages.js'

/**
 * How a request ended for its client: the `outcome` label of `cortensor_tasks_total` (a closed
 * set, so a dashboard's legend stays bounded).
 */
export type RequestOutcome =
  /** An answer went back. */
  | 'answered'
  /** The miners' outputs disagreed and no answer stood out. */
  | 'disagreed'
  /** No miner's output passed verification. */
  | 'rejected'
  /** Miners missed their deadline, or the chain closed the task before it was answered. */
  | 'expired'
  /** The client hung up. */
  | 'cancelled'
  /** Not enough free miners for the request (it never became a task). */
  | 'no_miner'
  /** Anything else: the chain or the verifier unavailable, the oracle stopping or crashing. */
  | 'failed'

const OUTCOME_OF_CODE: Readonly<Record<string, RequestOutcome>> = {
  RESULT_REJECTED: 'rejected',
  MINERS_MISSED_DEADLINE: 'expired',
  TASK_CLOSED: 'expired',
  CLIENT_GONE: 'cancelled',
  NO_MINER_READY: 'no_miner'
}

export function requestOutcome (reply: CompleteReply): RequestOutcome {
  if (reply.type === 'Answered') return reply.record.answer == null ? 'disagreed' : 'answered'
  return OUTCOME_OF_CODE[reply.code] ?? 'failed'
}
