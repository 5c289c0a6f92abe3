import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {entryOf, emptyLedger, follow, ledgerStatus, onTaskEvent, record} from '../../src/actors/earnings/earningsLedger.js'
import {explainEarning, type EarningFacts, type FindingCode, type LedgerEntry} from '../../src/operator/earningReport.js'
import {toAddress} from '../../src/protocols/address.js'

const NOW = 1_800_000_000_000
const ME = toAddress('0x' + '11'.repeat(20))
const FAST = toAddress('0x' + '22'.repeat(20))
const ORACLE = toAddress('0x' + '0a'.repeat(20))
const GWEI = 10n ** 9n
const ETH = 10n ** 18n

/** A miner that earns: admitted, registered, model served, heard by the oracle, gas, a paid task. */
function earning (): EarningFacts {
  return {
    now: NOW,
    role: 'miner',
    address: ME,
    upSince: NOW - 600_000,
    heartbeatIntervalMs: 2_000,
    aclGranted: true,
    registered: true,
    models: [{modelId: '1', phase: 'ready', served: true}],
    peers: 3,
    oracles: [{oracle: ORACLE, at: NOW - 1_000, hearsMe: true}],
    chain: {lastOkAt: NOW - 2_000, balanceWei: ETH, maxFeePerGasWei: 2n * GWEI, owedWei: 0n},
    ledger: {totals: {won: 1, lost: 0, expired: 0, rejected: 0, disagreed: 0}, earnedWei: '5000', since: NOW - 86_400_000, recent: [entry('9', 'won', {payoutWei: '5000', winners: [ME]})]},
    verdicts: []
  }
}

function entry (taskId: string, outcome: LedgerEntry['outcome'], fields: Partial<LedgerEntry> = {}): LedgerEntry {
  return {taskId, outcome, at: NOW - Number(taskId) * 1000, mode: 'competing', winners: [], payoutWei: '0', reason: outcome, ...fields}
}

function codes (facts: EarningFacts): FindingCode[] {
  return explainEarning(facts).findings.map(f => f.code)
}

function only (facts: EarningFacts, code: FindingCode): {message: string, fix: string} {
  const report = explainEarning(facts)
  assert.deepEqual(report.findings.map(f => f.code), [code], JSON.stringify(report.findings))
  assert.equal(report.earning, false)
  const finding = report.findings[0]!
  assert.ok(finding.fix.length > 10, `a fix for ${code}`)
  return finding
}

describe('explainEarning: why a node earns or not', () => {
  it('an earning miner: every check ok, no finding, the payout and the balance', () => {
    const report = explainEarning(earning())
    assert.deepEqual(report.findings, [])
    assert.equal(report.earning, true)
    assert.ok(report.checks.every(c => c.ok), JSON.stringify(report.checks.filter(c => !c.ok)))
    assert.equal(report.earnedWei, '5000')
    assert.equal(report.balanceWei, ETH.toString())
    assert.equal(report.tasks.won, 1)
  })

  it('not admitted: the ACL grants no miner role; the fix is the admit command for its address', () => {
    const f = only({...earning(), aclGranted: false, registered: false}, 'NOT_ADMITTED')
    assert.match(f.fix, new RegExp(`cortensord network admit --role miner ${ME}`))
  })

  it('admitted but not registered in IAM (after the start-up grace): NOT_REGISTERED', () => {
    only({...earning(), registered: false}, 'NOT_REGISTERED')
    // Just started: registering is under way, no finding yet.
    assert.deepEqual(codes({...earning(), registered: false, upSince: NOW - 1_000}), [])
  })

  it('model not verified: a local file whose hash is not the registry\'s says to drop the file or replace it', () => {
    const f = only({...earning(), models: [{modelId: '1', phase: 'ready', served: true}, {modelId: '2', phase: 'failed', error: 'HASH_MISMATCH: /m/q4.gguf: sha256 abc, expected def'}]}, 'MODEL_NOT_VERIFIED')
    assert.match(f.message, /model 2 is not verified: HASH_MISMATCH/)
    assert.match(f.fix, /remove its `file` from `models`/)
  })

  it('a model still fetching is not ok, yet no finding (it is on its way)', () => {
    const report = explainEarning({...earning(), models: [{modelId: '1', phase: 'fetching', progress: {bytes: 1, total: 4}}]})
    assert.deepEqual(report.findings, [])
    assert.equal(report.checks.find(c => c.name === 'model 1')?.detail, 'fetching 25% (on its way)')
  })

  it('a verified model the role could not load: MODEL_NOT_LOADED with the memory settings to change', () => {
    const f = only({...earning(), models: [{modelId: '1', phase: 'ready', served: false, serveError: 'needs 900 MiB, budget 512 MiB'}]}, 'MODEL_NOT_LOADED')
    assert.match(f.fix, /inference\.memoryBudgetMiB/)
  })

  it('no oracle heartbeat for five intervals: NO_ORACLE_HEARTBEAT (and NO_PEERS when nobody is connected)', () => {
    only({...earning(), oracles: [{oracle: ORACLE, at: NOW - 60_000, hearsMe: true}]}, 'NO_ORACLE_HEARTBEAT')
    assert.deepEqual(codes({...earning(), oracles: [], peers: 0}), ['NO_PEERS', 'NO_ORACLE_HEARTBEAT'])
    // A node up for less than the window has not heard an oracle yet: no finding.
    assert.deepEqual(codes({...earning(), oracles: [], upSince: NOW - 3_000}), [])
  })

  it('oracle heartbeats arrive but none lists this node: ORACLE_DOES_NOT_HEAR, pointing at announce and the firewall', () => {
    const f = only({...earning(), oracles: [{oracle: ORACLE, at: NOW - 1_000, hearsMe: false}]}, 'ORACLE_DOES_NOT_HEAR')
    assert.match(f.message, new RegExp(`${ORACLE} send theirs, none lists ${ME}`))
    assert.match(f.fix, /p2p\.announce/)
  })

  it('no gas: the balance is below 20 tasks at the current fee; the fix names the amount and the address', () => {
    const f = only({...earning(), chain: {lastOkAt: NOW, balanceWei: 0n, maxFeePerGasWei: 2n * GWEI}}, 'NO_GAS')
    // 260,000 gas × 20 tasks × 2 gwei = 0.0104 ETH.
    assert.equal(f.fix, `send at least 0.0104 ETH to ${ME}`)
  })

  it('the chain RPC stopped answering: CHAIN_UNREACHABLE with its error', () => {
    const f = only({...earning(), chain: {...earning().chain, lastOkAt: NOW - 120_000, lastError: 'ECONNREFUSED'}}, 'CHAIN_UNREACHABLE')
    assert.match(f.message, /ECONNREFUSED/)
    assert.match(f.fix, /chain\.rpcUrls/)
  })

  it('a chain answer minutes old on an idle node whose latest read succeeded is no finding', () => {
    const report = explainEarning({...earning(), chain: {...earning().chain, lastOkAt: NOW - 120_000}})
    assert.ok(!report.findings.some(f => f.code === 'CHAIN_UNREACHABLE'), JSON.stringify(report.findings))
  })

  it('losing every competing task: three lost in a row names the winner and what to do; a win in between resets it', () => {
    const lost = (id: string): LedgerEntry => entry(id, 'lost', {winners: [FAST], reason: `the slots went to ${FAST}`})
    const ledger = {totals: {won: 0, lost: 3, expired: 0, rejected: 0, disagreed: 0}, earnedWei: '0', since: NOW, recent: [lost('3'), lost('2'), lost('1')]}
    const f = only({...earning(), ledger}, 'LOSING_COMPETING')
    assert.match(f.message, new RegExp(`lost the last 3 competing tasks to ${FAST}`))
    assert.match(f.fix, /faster hardware/)
    assert.deepEqual(codes({...earning(), ledger: {...ledger, earnedWei: '1', recent: [lost('4'), lost('3'), entry('2', 'won', {payoutWei: '1'}), lost('1')]}}), [])
  })

  it('failing verification: the oracle\'s reason from its heartbeat, joined to the rejected task', () => {
    const ledger = {totals: {won: 0, lost: 0, expired: 0, rejected: 1, disagreed: 0}, earnedWei: '0', since: NOW, recent: [entry('7', 'rejected', {reason: 'the oracle rejected your output (OutputRejected)'})]}
    const reason = 'token 2 ("banana") has log-probability -19.2, below the floor -12'
    const report = explainEarning({...earning(), ledger, verdicts: [{oracle: ORACLE, taskId: '7', verdict: 'rejected', reason}]})
    assert.deepEqual(report.findings.map(f => f.code), ['FAILING_VERIFICATION'])
    assert.ok(report.findings[0]!.message.includes(reason), report.findings[0]!.message)
    assert.ok(report.recent[0]!.reason.includes(reason), 'the recent outcome carries the oracle\'s reason')
  })

  it('failing verification after a restart: the reason kept with the entry, once the oracle\'s heartbeats no longer repeat it', () => {
    const reason = 'token 2 ("banana") has log-probability -19.2, below the floor -12'
    const ledger = {totals: {won: 0, lost: 0, expired: 0, rejected: 1, disagreed: 0}, earnedWei: '0', since: NOW - 86_400_000,
      recent: [entry('7', 'rejected', {reason: 'the oracle rejected your output (OutputRejected)', verdict: {oracle: ORACLE, reason}})]}
    const report = explainEarning({...earning(), ledger, verdicts: []})
    assert.equal(report.recent[0]!.reason, `the oracle rejected your output (OutputRejected): ${reason} (oracle ${ORACLE})`)
    assert.ok(report.findings.find(f => f.code === 'FAILING_VERIFICATION')?.message.includes(reason))
  })
})

describe('earnings ledger: a miner\'s tasks from their chain events', () => {
  it('books won (with the first winner\'s remainder), lost to the winner, rejected and expired', () => {
    const ledger = emptyLedger(ME, 'test', 0, NOW)
    const close = (taskId: string, event: Parameters<typeof onTaskEvent>[1], detail?: Parameters<typeof entryOf>[3]): void => {
      const closing = onTaskEvent(ledger, event)
      assert.ok(closing != null, `task ${taskId} closes`)
      const e = entryOf(closing, ME, NOW, detail)
      if (e != null) record(ledger, e)
    }
    // Won, first of two winners: payoutEach + the remainder of a 1001-wei escrow.
    follow(ledger, '1', {mode: 'parallel', assigned: true})
    onTaskEvent(ledger, {type: 'TaskPrecommitted', taskId: '1', miner: ME, commitment: '0x'})
    onTaskEvent(ledger, {type: 'TaskCommitted', taskId: '1', miner: ME, outputHash: '0x'})
    close('1', {type: 'TaskEnded', taskId: '1', winners: [ME, FAST], payoutEach: '500', refund: '0'}, {escrowWei: 1001n, rejected: false})
    // Lost: a competing task where only the fast miner precommitted.
    follow(ledger, '2', {mode: 'competing'})
    onTaskEvent(ledger, {type: 'TaskPrecommitted', taskId: '2', miner: FAST, commitment: '0x'})
    close('2', {type: 'TaskEnded', taskId: '2', winners: [FAST], payoutEach: '1000', refund: '0'})
    // Rejected: committed, not paid, named by OutputRejected.
    follow(ledger, '3', {mode: 'competing'})
    onTaskEvent(ledger, {type: 'TaskPrecommitted', taskId: '3', miner: ME, commitment: '0x'})
    onTaskEvent(ledger, {type: 'TaskCommitted', taskId: '3', miner: ME, outputHash: '0x'})
    close('3', {type: 'TaskEnded', taskId: '3', winners: [FAST], payoutEach: '1000', refund: '0'}, {rejected: true})
    // Expired: assigned on chain (no gossip), never revealed.
    onTaskEvent(ledger, {type: 'MinerAssigned', taskId: '4', miner: ME, slot: 0})
    close('4', {type: 'TaskExpired', taskId: '4', refund: '1000'})
    // A competing task nobody took, of no concern to this miner: not booked.
    follow(ledger, '5', {mode: 'competing'})
    close('5', {type: 'TaskExpired', taskId: '5', refund: '1000'})

    const status = ledgerStatus(ledger)
    assert.deepEqual(status.totals, {won: 1, lost: 1, expired: 1, rejected: 1, disagreed: 0})
    assert.equal(status.earnedWei, '501')
    assert.deepEqual(status.recent.map(e => [e.taskId, e.outcome]), [['4', 'expired'], ['3', 'rejected'], ['2', 'lost'], ['1', 'won']])
    assert.match(status.recent[2]!.reason, new RegExp(`the slots went to ${FAST}`))
    assert.equal(ledger.followed.size, 0, 'closed tasks are no longer followed')
  })
})
