// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Role} from "./ACL.sol";
import {IAM} from "./IAM.sol";
import {Counter, NodeStats} from "./NodeStats.sol";
import {ModelRegistry} from "./ModelRegistry.sol";

/// Numeric values are mirrored in src/chain/enums.ts.
enum TaskState {
    None,
    Created,
    Assigned,
    Precommitted,
    Committed,
    Ended,
    Expired
}

enum Mode {
    Parallel,
    Competing
}

enum SlotState {
    Empty,
    Assigned,
    Precommitted,
    Committed
}

/// Proof-of-Useful-Work task state machine, escrow and rewards.
///
/// Parallel: the oracle names k miners at creation (state Assigned). Competing: the first k
/// active, ready miners take the slots by precommitting (Created -> Assigned once all slots
/// are held). Precommit is `keccak256(abi.encode(taskId, miner, keccak256(bytes(output)), salt))`;
/// reveals (`commit`) open once every slot has precommitted, so nobody can copy a revealed
/// answer into their own precommit. When a slot stays unprecommitted (a miner died and no
/// replacement came, or too few competitors), the miners that did precommit may still reveal
/// once the precommit deadline passed: nobody can precommit any more, so nothing can be copied,
/// and honest work is paid though another miner failed.
///
/// Closing: a task may close once it is Committed (every slot that could reveal did), or once the
/// deadline of its current phase passed (precommitDeadline while nobody precommitted,
/// commitDeadline once anyone did). Without any reveal it becomes Expired, else Ended. Payouts
/// are equal parts of the escrow (the remainder wei to the first paid miner); with nobody to pay
/// the escrow goes back to the oracle. Miners that did not reveal are recorded Expired. Two ways:
///
/// - `settle` (the normal path, only verified work is paid): the task's oracle, having verified
///   each revealed output (re-run by validators, audited), names the output hashes it accepts
///   and those it rejects. Accepted reveals are paid even when they differ: miners on different
///   hardware produce different yet honest text, so agreement by hash is no test of honesty.
///   Rejected miners are unpaid and recorded Rejected, which counts toward suspension in
///   NodeStats; a reveal the oracle could not check is unpaid without a fault (Disagreed). Rejecting some
///   miners saves the oracle nothing (their share goes to the accepted ones); rejecting all of
///   them refunds it, which is why each rejection is accountable: the rejected output is public
///   in `TaskCommitted` and named by `OutputRejected`, so anyone can re-run the task and prove a
///   false rejection against the oracle.
/// - `end` (the fallback, anyone once the deadline and the oracle's grace passed, so escrow never stays locked when the
///   oracle disappears; the oracle may also call it early on a Committed task): nothing is
///   verified, so it pays the miners whose output hash is the strict majority of the reveals,
///   records the others Disagreed, and refunds the oracle when there is no such majority.
contract Cognitive {
    struct Task {
        address oracle;
        uint64 seed;
        Mode mode;
        uint8 k;
        TaskState state;
        uint8 slotsTaken;
        uint8 precommits;
        uint8 reveals;
        uint64 precommitDeadline;
        uint64 commitDeadline;
        uint64 createdAt;
        uint256 modelId;
        uint256 escrow;
        /// Input and params travel in full in calldata and `TaskCreated`; storage keeps hashes.
        bytes32 inputHash;
        bytes32 paramsHash;
    }

    struct Slot {
        address miner;
        SlotState state;
        bytes32 commitment;
        bytes32 outputHash;
    }

    uint8 public constant MAX_K = 16;
    /// After a phase deadline only the task's oracle may close it for this long (it verifies first).
    uint64 public constant ORACLE_SETTLE_GRACE = 60;

    IAM public immutable iam;
    NodeStats public immutable nodeStats;
    ModelRegistry public immutable modelRegistry;

    uint256 public taskCount;
    mapping(uint256 => Task) private _tasks;
    mapping(uint256 => mapping(uint256 => Slot)) private _slots;
    /// Slot index + 1 of a miner in a task; 0 = not in the task.
    mapping(uint256 => mapping(address => uint256)) private _slotOf;
    /// Payouts whose push transfer failed (a contract miner rejecting ether); see `withdraw`.
    mapping(address => uint256) public owed;

    event TaskCreated(
        uint256 indexed taskId,
        address indexed oracle,
        uint256 indexed modelId,
        Mode mode,
        uint8 k,
        string input,
        bytes params,
        uint64 seed,
        uint256 escrow,
        uint64 precommitDeadline,
        uint64 commitDeadline
    );
    event TaskStateChanged(uint256 indexed taskId, TaskState state);
    event MinerAssigned(uint256 indexed taskId, address indexed miner, uint8 slot);
    event TaskPrecommitted(uint256 indexed taskId, address indexed miner, bytes32 commitment);
    event TaskCommitted(uint256 indexed taskId, address indexed miner, string output, bytes32 outputHash);
    event MinerReassigned(uint256 indexed taskId, address indexed from, address indexed to, uint8 slot);
    event TaskEnded(
        uint256 indexed taskId,
        bytes32 winningOutputHash,
        address[] winners,
        uint256 payoutEach,
        uint256 refund,
        uint8 reveals
    );
    event TaskExpired(uint256 indexed taskId, uint256 refund);
    event OutputRejected(uint256 indexed taskId, address indexed miner, bytes32 outputHash);
    event PayoutDeferred(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);

    error NotOracle(address account);
    error NotTaskOracle(uint256 taskId, address account);
    error NotActiveMiner(address account);
    error UnknownModel(uint256 modelId);
    error InactiveModel(uint256 modelId);
    error InvalidK(uint8 k);
    error InvalidDeadlines(uint64 precommitDeadline, uint64 commitDeadline);
    error WrongAssigneeCount(uint256 expected, uint256 actual);
    error DuplicateMiner(address miner);
    error UnknownTask(uint256 taskId);
    error TaskExists(uint256 taskId);
    error WrongState(TaskState expected, TaskState actual);
    error NotAssigned(uint256 taskId, address miner);
    error SlotsFull(uint256 taskId);
    error MinerNotReady(address miner, uint256 modelId);
    error AlreadyPrecommitted(uint256 taskId, address miner);
    error AlreadyCommitted(uint256 taskId, address miner);
    error ZeroCommitment();
    error CommitmentMismatch(uint256 taskId, address miner);
    error DeadlinePassed(uint64 deadline);
    error DeadlineNotPassed(uint64 deadline);
    error AlreadyInTask(uint256 taskId, address miner);
    error RevealsStarted(uint256 taskId);
    error NothingOwed(address account);
    error TransferFailed(address account);
    error MinerSuspended(address miner);
    error TooManyHashes(uint256 count);

    constructor(IAM iam_, NodeStats nodeStats_, ModelRegistry modelRegistry_) {
        iam = iam_;
        nodeStats = nodeStats_;
        modelRegistry = modelRegistry_;
    }

    // ---------------------------------------------------------------- oracle side

    /// Task ids are derived from the oracle and a request id it picks, so the oracle knows the
    /// id before the block and can gossip the task at once: miners start before it is mined.
    /// 64 bits keep ids short for people; a collision is refused (`TaskExists`), never merged.
    function taskIdFor(address oracle, bytes32 requestId) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(oracle, requestId))) >> 192;
    }

    function createTask(
        bytes32 requestId,
        uint256 modelId,
        string calldata input,
        bytes calldata params,
        uint64 seed,
        Mode mode,
        uint8 k,
        address[] calldata assignees,
        uint64 precommitDeadline,
        uint64 commitDeadline
    ) external payable returns (uint256 taskId) {
        if (!iam.isActive(msg.sender, Role.Oracle)) revert NotOracle(msg.sender);
        if (!modelRegistry.exists(modelId)) revert UnknownModel(modelId);
        if (!modelRegistry.isModelActive(modelId)) revert InactiveModel(modelId);
        if (k == 0 || k > MAX_K) revert InvalidK(k);
        if (precommitDeadline <= block.timestamp || commitDeadline <= precommitDeadline) {
            revert InvalidDeadlines(precommitDeadline, commitDeadline);
        }
        uint256 expected = mode == Mode.Parallel ? k : 0;
        if (assignees.length != expected) revert WrongAssigneeCount(expected, assignees.length);

        taskId = taskIdFor(msg.sender, requestId);
        Task storage task = _tasks[taskId];
        if (task.oracle != address(0)) revert TaskExists(taskId);
        taskCount++;
        task.oracle = msg.sender;
        task.seed = seed;
        task.mode = mode;
        task.k = k;
        task.precommitDeadline = precommitDeadline;
        task.commitDeadline = commitDeadline;
        task.createdAt = uint64(block.timestamp);
        task.modelId = modelId;
        task.escrow = msg.value;
        task.inputHash = keccak256(bytes(input));
        task.paramsHash = keccak256(params);
        emit TaskCreated(
            taskId, msg.sender, modelId, mode, k, input, params, seed, msg.value, precommitDeadline, commitDeadline
        );

        for (uint256 i = 0; i < assignees.length; i++) {
            address miner = assignees[i];
            if (!iam.isActive(miner, Role.Miner)) revert NotActiveMiner(miner);
            if (nodeStats.isSuspended(miner)) revert MinerSuspended(miner);
            if (_slotOf[taskId][miner] != 0) revert DuplicateMiner(miner);
            _takeSlot(taskId, task, miner);
        }
        _setState(taskId, task, mode == Mode.Parallel ? TaskState.Assigned : TaskState.Created);
    }

    /// Replaces a miner that has not revealed (dead or too slow). Refused once any miner
    /// revealed: the newcomer could otherwise copy a revealed output.
    function reassign(uint256 taskId, address from, address to) external {
        Task storage task = _existingTask(taskId);
        if (msg.sender != task.oracle) revert NotTaskOracle(taskId, msg.sender);
        TaskState state = task.state;
        if (state != TaskState.Created && state != TaskState.Assigned && state != TaskState.Precommitted) {
            revert WrongState(TaskState.Assigned, state);
        }
        if (task.reveals != 0) revert RevealsStarted(taskId);
        uint256 index = _slotOf[taskId][from];
        if (index == 0) revert NotAssigned(taskId, from);
        if (_slotOf[taskId][to] != 0) revert AlreadyInTask(taskId, to);
        if (!iam.isActive(to, Role.Miner)) revert NotActiveMiner(to);
        if (nodeStats.isSuspended(to)) revert MinerSuspended(to);

        Slot storage slot = _slots[taskId][index - 1];
        if (slot.state == SlotState.Precommitted) task.precommits -= 1;
        slot.miner = to;
        slot.state = SlotState.Assigned;
        slot.commitment = bytes32(0);
        delete _slotOf[taskId][from];
        _slotOf[taskId][to] = index;

        emit MinerReassigned(taskId, from, to, uint8(index - 1));
        emit MinerAssigned(taskId, to, uint8(index - 1));
        nodeStats.increment(from, Counter.Expired);
        nodeStats.increment(to, Counter.Assigned);
        if (state == TaskState.Precommitted) _setState(taskId, task, TaskState.Assigned);
    }

    // ---------------------------------------------------------------- miner side

    function precommit(uint256 taskId, bytes32 commitment) external {
        Task storage task = _existingTask(taskId);
        if (commitment == bytes32(0)) revert ZeroCommitment();
        TaskState state = task.state;
        uint256 index = _slotOf[taskId][msg.sender];
        if (index == 0) {
            if (task.mode == Mode.Parallel) revert NotAssigned(taskId, msg.sender);
            if (task.slotsTaken == task.k) revert SlotsFull(taskId);
            if (state != TaskState.Created) revert WrongState(TaskState.Created, state);
            if (block.timestamp > task.precommitDeadline) revert DeadlinePassed(task.precommitDeadline);
            if (!iam.isActive(msg.sender, Role.Miner)) revert NotActiveMiner(msg.sender);
            if (nodeStats.isSuspended(msg.sender)) revert MinerSuspended(msg.sender);
            if (!nodeStats.isReady(msg.sender, task.modelId)) revert MinerNotReady(msg.sender, task.modelId);
            index = _takeSlot(taskId, task, msg.sender);
            if (task.slotsTaken == task.k) _setState(taskId, task, TaskState.Assigned);
        } else {
            if (state != TaskState.Created && state != TaskState.Assigned) {
                if (state == TaskState.Precommitted) revert AlreadyPrecommitted(taskId, msg.sender);
                revert WrongState(TaskState.Assigned, state);
            }
            if (block.timestamp > task.precommitDeadline) revert DeadlinePassed(task.precommitDeadline);
        }

        Slot storage slot = _slots[taskId][index - 1];
        if (slot.state != SlotState.Assigned) revert AlreadyPrecommitted(taskId, msg.sender);
        slot.state = SlotState.Precommitted;
        slot.commitment = commitment;
        task.precommits += 1;
        emit TaskPrecommitted(taskId, msg.sender, commitment);
        nodeStats.increment(msg.sender, Counter.Precommitted);
        if (task.precommits == task.k) _setState(taskId, task, TaskState.Precommitted);
    }

    function commit(uint256 taskId, string calldata output, bytes32 salt) external {
        Task storage task = _existingTask(taskId);
        uint256 index = _slotOf[taskId][msg.sender];
        if (index == 0) revert NotAssigned(taskId, msg.sender);
        Slot storage slot = _slots[taskId][index - 1];
        if (slot.state == SlotState.Committed) revert AlreadyCommitted(taskId, msg.sender);
        TaskState state = task.state;
        bool lateReveal = (state == TaskState.Created || state == TaskState.Assigned)
            && block.timestamp > task.precommitDeadline && slot.state == SlotState.Precommitted;
        if (state != TaskState.Precommitted && !lateReveal) revert WrongState(TaskState.Precommitted, state);
        if (block.timestamp > task.commitDeadline) revert DeadlinePassed(task.commitDeadline);
        bytes32 outputHash = keccak256(bytes(output));
        if (commitmentOf(taskId, msg.sender, outputHash, salt) != slot.commitment) {
            revert CommitmentMismatch(taskId, msg.sender);
        }

        slot.state = SlotState.Committed;
        slot.outputHash = outputHash;
        task.reveals += 1;
        emit TaskCommitted(taskId, msg.sender, output, outputHash);
        nodeStats.increment(msg.sender, Counter.Committed);
        // Every precommitted slot revealed: all k (the normal case), or all that could once the
        // precommit deadline closed the others.
        if (task.reveals == task.k || (lateReveal && task.reveals == task.precommits)) {
            _setState(taskId, task, TaskState.Committed);
        }
    }

    // ---------------------------------------------------------------- settlement

    /// The verified settlement, by the task's oracle when `end` would let it close the task:
    /// reveals whose output hash is in `accepted` are paid (Agreed); those in `rejected` are
    /// unpaid and recorded Rejected (a proven fault); any other reveal (the oracle could not
    /// check it) is unpaid and recorded Disagreed, with no fault.
    function settle(uint256 taskId, bytes32[] calldata accepted, bytes32[] calldata rejected) external {
        Task storage task = _existingTask(taskId);
        if (msg.sender != task.oracle) revert NotTaskOracle(taskId, msg.sender);
        _requireClosable(taskId, task);
        uint256 k = task.k;
        // At most one hash per slot: bounds the O(k * hashes) scan below to MAX_K^2.
        if (accepted.length + rejected.length > k) revert TooManyHashes(accepted.length + rejected.length);

        Slot[] memory slots = _slotsOf(taskId, k);
        Counter[] memory verdicts = new Counter[](k);
        uint256 paid;
        for (uint256 i = 0; i < k; i++) {
            if (slots[i].state != SlotState.Committed) {
                verdicts[i] = Counter.Expired;
                continue;
            }
            bytes32 outputHash = slots[i].outputHash;
            verdicts[i] = _listed(accepted, outputHash) ? Counter.Agreed
                : _listed(rejected, outputHash) ? Counter.Rejected
                : Counter.Disagreed;
            if (verdicts[i] == Counter.Agreed) paid++;
        }
        _close(taskId, task, slots, verdicts, paid);
    }

    function end(uint256 taskId) external {
        Task storage task = _existingTask(taskId);
        _requireClosable(taskId, task);

        uint256 k = task.k;
        uint256 reveals = task.reveals;
        bytes32 winningHash;
        uint256 winnerCount;
        // O(k^2) with k <= MAX_K: at most 256 comparisons of memory words.
        Slot[] memory slots = _slotsOf(taskId, k);
        for (uint256 i = 0; i < k && winnerCount == 0; i++) {
            if (slots[i].state != SlotState.Committed) continue;
            uint256 count;
            for (uint256 j = 0; j < k; j++) {
                if (slots[j].state == SlotState.Committed && slots[j].outputHash == slots[i].outputHash) count++;
            }
            if (count * 2 > reveals) {
                winningHash = slots[i].outputHash;
                winnerCount = count;
            }
        }

        Counter[] memory verdicts = new Counter[](k);
        for (uint256 i = 0; i < k; i++) {
            if (slots[i].state != SlotState.Committed) verdicts[i] = Counter.Expired;
            else if (winnerCount != 0 && slots[i].outputHash == winningHash) verdicts[i] = Counter.Agreed;
            else verdicts[i] = Counter.Disagreed;
        }
        _close(taskId, task, slots, verdicts, winnerCount);
    }

    /// Collects payouts whose direct transfer failed in `settle` or `end`.
    function withdraw() external {
        uint256 amount = owed[msg.sender];
        if (amount == 0) revert NothingOwed(msg.sender);
        owed[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender);
    }

    // ---------------------------------------------------------------- views

    function taskOf(uint256 taskId) external view returns (Task memory) {
        return _existingTask(taskId);
    }

    /// Miners holding a slot, in slot order (competing tasks: only the slots taken so far).
    function minersOf(uint256 taskId) external view returns (address[] memory miners) {
        Task storage task = _existingTask(taskId);
        miners = new address[](task.slotsTaken);
        for (uint256 i = 0; i < miners.length; i++) {
            miners[i] = _slots[taskId][i].miner;
        }
    }

    /// The slot a miner holds in a task; `state == Empty` when it holds none.
    function slotOf(uint256 taskId, address miner) external view returns (Slot memory) {
        uint256 index = _slotOf[taskId][miner];
        if (index == 0) return Slot(address(0), SlotState.Empty, bytes32(0), bytes32(0));
        return _slots[taskId][index - 1];
    }

    function commitmentOf(uint256 taskId, address miner, bytes32 outputHash, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(taskId, miner, outputHash, salt));
    }

    // ---------------------------------------------------------------- internals

    function _existingTask(uint256 taskId) private view returns (Task storage task) {
        task = _tasks[taskId];
        if (task.state == TaskState.None) revert UnknownTask(taskId);
    }

    function _takeSlot(uint256 taskId, Task storage task, address miner) private returns (uint256 index) {
        uint8 slot = task.slotsTaken;
        _slots[taskId][slot] = Slot(miner, SlotState.Assigned, bytes32(0), bytes32(0));
        task.slotsTaken = slot + 1;
        index = uint256(slot) + 1;
        _slotOf[taskId][miner] = index;
        emit MinerAssigned(taskId, miner, slot);
        nodeStats.increment(miner, Counter.Assigned);
    }

    /// Reverts unless the task may close now: it is still open, and it is Committed with its
    /// oracle calling, or the deadline of its current phase passed (then anyone may).
    function _listed(bytes32[] calldata hashes, bytes32 hash) private pure returns (bool) {
        for (uint256 j = 0; j < hashes.length; j++) {
            if (hashes[j] == hash) return true;
        }
        return false;
    }

    function _requireClosable(uint256 taskId, Task storage task) private view {
        TaskState state = task.state;
        if (state == TaskState.Ended || state == TaskState.Expired || state == TaskState.None) {
            revert WrongState(TaskState.Committed, state);
        }
        uint64 deadline = (state == TaskState.Created || state == TaskState.Assigned) && task.precommits == 0
            ? task.precommitDeadline
            : task.commitDeadline;
        if (block.timestamp <= deadline) {
            if (msg.sender != task.oracle) revert NotTaskOracle(taskId, msg.sender);
            if (state != TaskState.Committed) revert DeadlineNotPassed(deadline);
        } else if (msg.sender != task.oracle && block.timestamp <= deadline + ORACLE_SETTLE_GRACE) {
            // The oracle verifies before it settles: an unverified `end` the moment the deadline
            // passes would let a colluding majority that held back one reveal get paid.
            revert DeadlineNotPassed(deadline + ORACLE_SETTLE_GRACE);
        }
    }

    /// Copied to memory once: settlement reads each slot several times.
    function _slotsOf(uint256 taskId, uint256 k) private view returns (Slot[] memory slots) {
        slots = new Slot[](k);
        for (uint256 i = 0; i < k; i++) {
            slots[i] = _slots[taskId][i];
        }
    }

    /// Closes a task whose slots the caller judged: `verdicts[i]` is the counter slot i's miner
    /// earns, and the `paidCount` slots judged Agreed share the escrow (none: it is refunded).
    /// The winning hash reported is the first paid slot's output hash.
    function _close(uint256 taskId, Task storage task, Slot[] memory slots, Counter[] memory verdicts, uint256 paidCount)
        private
    {
        uint256 reveals = task.reveals;
        uint256 escrow = task.escrow;
        _setState(taskId, task, reveals == 0 ? TaskState.Expired : TaskState.Ended);

        address[] memory winners = new address[](paidCount);
        bytes32 winningHash;
        uint256 w;
        for (uint256 i = 0; i < slots.length; i++) {
            Slot memory slot = slots[i];
            // Competing slots nobody took.
            if (slot.miner == address(0)) continue;
            Counter verdict = verdicts[i];
            if (verdict == Counter.Agreed) {
                if (w == 0) winningHash = slot.outputHash;
                winners[w++] = slot.miner;
            } else if (verdict == Counter.Rejected) {
                emit OutputRejected(taskId, slot.miner, slot.outputHash);
            }
            nodeStats.increment(slot.miner, verdict);
        }

        uint256 payoutEach;
        uint256 refund;
        if (paidCount == 0) {
            refund = escrow;
            _pay(task.oracle, refund);
        } else {
            payoutEach = escrow / paidCount;
            _pay(winners[0], payoutEach + escrow % paidCount);
            for (uint256 i = 1; i < paidCount; i++) {
                _pay(winners[i], payoutEach);
            }
        }
        if (reveals == 0) emit TaskExpired(taskId, refund);
        else emit TaskEnded(taskId, winningHash, winners, payoutEach, refund, uint8(reveals));
    }

    function _setState(uint256 taskId, Task storage task, TaskState state) private {
        task.state = state;
        emit TaskStateChanged(taskId, state);
    }

    /// Push first so miners need no extra transaction; a rejecting recipient (a contract)
    /// cannot block settlement and collects through `withdraw` instead.
    function _pay(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool ok,) = to.call{value: amount, gas: 30_000}("");
        if (!ok) {
            owed[to] += amount;
            emit PayoutDeferred(to, amount);
        }
    }
}
