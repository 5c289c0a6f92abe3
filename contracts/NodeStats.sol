// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ACL, Role} from "./ACL.sol";
import {IAM} from "./IAM.sol";

/// Which task counters Cognitive moves. Numeric values are mirrored in src/chain/enums.ts, so
/// new counters are appended.
enum Counter {
    Assigned,
    Precommitted,
    Committed,
    Agreed,
    Disagreed,
    Expired,
    /// A proven fault: the task's oracle rejected the revealed output in `Cognitive.settle`
    /// (an invented or edited answer, another model's output, a failed audit).
    Rejected
}

/// Heartbeats (`ping`) from active nodes and per-node work counters kept by Cognitive.
///
/// Suspension: a miner with `faultLimit` rejected outputs takes no new work in Cognitive until an
/// admin reinstates it. Only rejections count, not disagreements or expiries: those also befall
/// honest miners (another hardware class, a crash), while a rejection is an output the oracle
/// verified and found wrong, and the output itself stays public in Cognitive's `TaskCommitted`
/// for anyone to re-verify.
contract NodeStats {
    struct Stats {
        uint64 lastPingAt;
        uint64 pingCount;
        bool ready;
        uint64 assigned;
        uint64 precommitted;
        uint64 committed;
        uint64 agreed;
        uint64 disagreed;
        uint64 expired;
        uint64 rejected;
    }

    /// Few enough that a cheating miner is stopped after a handful of tasks, more than one so a
    /// single disputed rejection does not take an honest miner offline before an admin looks.
    uint64 public constant DEFAULT_FAULT_LIMIT = 3;
    /// As many models as a node may serve (a heartbeat carries at most 32).
    uint256 public constant MAX_READY_MODELS = 32;

    ACL public immutable acl;
    IAM public immutable iam;
    /// The only writer of the counters; set once by an admin after Cognitive is deployed
    /// (Cognitive itself needs this contract's address at construction).
    address public cognitive;
    /// A ready flag older than this many seconds no longer counts; 0 disables staleness.
    uint64 public readyWindow;
    /// Rejections at which a node is suspended (`isSuspended`); 0 disables suspension.
    uint64 public faultLimit;

    mapping(address => Stats) private _stats;
    /// Each node's models as its last ping listed them (short: checked in a loop by `isReady`).
    mapping(address => uint256[]) private _readyModels;

    event Pinged(address indexed node, uint256[] modelIds, bool ready, uint64 pingCount);
    event CounterIncremented(address indexed node, Counter indexed counter, uint64 value);
    event CognitiveSet(address cognitive);
    event ReadyWindowSet(uint64 readyWindow);
    event FaultLimitSet(uint64 faultLimit);
    event Reinstated(address indexed node, address indexed by);

    error NotAdmin(address account);
    error NotActiveNode(address account);
    error OnlyCognitive(address caller);
    error CognitiveAlreadySet(address cognitive);
    error TooManyModels(uint256 count, uint256 max);
    error ZeroAddress();
    error NothingToReinstate(address node);

    constructor(ACL acl_, IAM iam_, uint64 readyWindow_) {
        acl = acl_;
        iam = iam_;
        readyWindow = readyWindow_;
        faultLimit = DEFAULT_FAULT_LIMIT;
        emit ReadyWindowSet(readyWindow_);
        emit FaultLimitSet(DEFAULT_FAULT_LIMIT);
    }

    modifier onlyAdmin() {
        if (!acl.hasRole(Role.Admin, msg.sender)) revert NotAdmin(msg.sender);
        _;
    }

    function setCognitive(address cognitive_) external onlyAdmin {
        if (cognitive != address(0)) revert CognitiveAlreadySet(cognitive);
        if (cognitive_ == address(0)) revert ZeroAddress();
        cognitive = cognitive_;
        emit CognitiveSet(cognitive_);
    }

    function setReadyWindow(uint64 readyWindow_) external onlyAdmin {
        readyWindow = readyWindow_;
        emit ReadyWindowSet(readyWindow_);
    }

    function setFaultLimit(uint64 faultLimit_) external onlyAdmin {
        faultLimit = faultLimit_;
        emit FaultLimitSet(faultLimit_);
    }

    /// Clears a node's rejections after an admin judged them (a disputed rejection, a fixed
    /// setup), so it may take work again; the other counters stay as history.
    function reinstate(address node) external onlyAdmin {
        Stats storage s = _stats[node];
        if (s.rejected == 0) revert NothingToReinstate(node);
        s.rejected = 0;
        emit Reinstated(node, msg.sender);
    }

    /// `modelIds` are every model the node serves now (each ping replaces the last list); `ready`
    /// says it takes tasks now. A miner serving many models is ready for each of them.
    function ping(uint256[] calldata modelIds, bool ready) external {
        if (iam.activeRoleOf(msg.sender) == Role.None) revert NotActiveNode(msg.sender);
        if (modelIds.length > MAX_READY_MODELS) revert TooManyModels(modelIds.length, MAX_READY_MODELS);
        Stats storage s = _stats[msg.sender];
        s.lastPingAt = uint64(block.timestamp);
        s.pingCount += 1;
        s.ready = ready;
        _readyModels[msg.sender] = modelIds;
        emit Pinged(msg.sender, modelIds, ready, s.pingCount);
    }

    /// The models the node listed in its last ping.
    function readyModelsOf(address node) external view returns (uint256[] memory) {
        return _readyModels[node];
    }

    function increment(address node, Counter counter) external {
        if (msg.sender != cognitive) revert OnlyCognitive(msg.sender);
        Stats storage s = _stats[node];
        uint64 value;
        if (counter == Counter.Assigned) value = ++s.assigned;
        else if (counter == Counter.Precommitted) value = ++s.precommitted;
        else if (counter == Counter.Committed) value = ++s.committed;
        else if (counter == Counter.Agreed) value = ++s.agreed;
        else if (counter == Counter.Disagreed) value = ++s.disagreed;
        else if (counter == Counter.Expired) value = ++s.expired;
        else value = ++s.rejected;
        emit CounterIncremented(node, counter, value);
    }

    function isReady(address node, uint256 modelId) external view returns (bool) {
        Stats storage s = _stats[node];
        if (!s.ready) return false;
        if (readyWindow != 0 && block.timestamp > uint256(s.lastPingAt) + readyWindow) return false;
        uint256[] storage models = _readyModels[node];
        for (uint256 i = 0; i < models.length; i++) if (models[i] == modelId) return true;
        return false;
    }

    function isSuspended(address node) external view returns (bool) {
        return faultLimit != 0 && _stats[node].rejected >= faultLimit;
    }

    function statsOf(address node) external view returns (Stats memory) {
        return _stats[node];
    }
}
