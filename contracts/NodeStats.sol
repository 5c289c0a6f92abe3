// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ACL, Role} from "./ACL.sol";
import {IAM} from "./IAM.sol";

/// Which task counters Cognitive moves. Numeric values are mirrored in src/chain/roles.ts.
enum Counter {
    Assigned,
    Precommitted,
    Committed,
    Agreed,
    Disagreed,
    Expired
}

/// Heartbeats (`ping`) from active nodes and per-node work counters kept by Cognitive.
contract NodeStats {
    struct Stats {
        uint64 lastPingAt;
        uint64 pingCount;
        bool ready;
        uint256 readyModelId;
        uint64 assigned;
        uint64 precommitted;
        uint64 committed;
        uint64 agreed;
        uint64 disagreed;
        uint64 expired;
    }

    ACL public immutable acl;
    IAM public immutable iam;
    /// The only writer of the counters; set once by an admin after Cognitive is deployed
    /// (Cognitive itself needs this contract's address at construction).
    address public cognitive;
    /// A ready flag older than this many seconds no longer counts; 0 disables staleness.
    uint64 public readyWindow;

    mapping(address => Stats) private _stats;

    event Pinged(address indexed node, uint256 indexed modelId, bool ready, uint64 pingCount);
    event CounterIncremented(address indexed node, Counter indexed counter, uint64 value);
    event CognitiveSet(address cognitive);
    event ReadyWindowSet(uint64 readyWindow);

    error NotAdmin(address account);
    error NotActiveNode(address account);
    error OnlyCognitive(address caller);
    error CognitiveAlreadySet(address cognitive);
    error ZeroAddress();

    constructor(ACL acl_, IAM iam_, uint64 readyWindow_) {
        acl = acl_;
        iam = iam_;
        readyWindow = readyWindow_;
        emit ReadyWindowSet(readyWindow_);
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

    /// `modelId` is the model the node has loaded (0: none); `ready` says it takes tasks now.
    function ping(uint256 modelId, bool ready) external {
        if (iam.activeRoleOf(msg.sender) == Role.None) revert NotActiveNode(msg.sender);
        Stats storage s = _stats[msg.sender];
        s.lastPingAt = uint64(block.timestamp);
        s.pingCount += 1;
        s.ready = ready;
        s.readyModelId = modelId;
        emit Pinged(msg.sender, modelId, ready, s.pingCount);
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
        else value = ++s.expired;
        emit CounterIncremented(node, counter, value);
    }

    function isReady(address node, uint256 modelId) external view returns (bool) {
        Stats storage s = _stats[node];
        if (!s.ready || s.readyModelId != modelId) return false;
        return readyWindow == 0 || block.timestamp <= uint256(s.lastPingAt) + readyWindow;
    }

    function statsOf(address node) external view returns (Stats memory) {
        return _stats[node];
    }
}
