// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ACL, Role} from "./ACL.sol";

/// Node identity: Ethereum address <-> libp2p peer id <-> role <-> metadata.
///
/// One registration per address, with one node role (Oracle, Miner or Validator). Deactivation
/// frees the peer id (so `addressOfPeer` stops resolving it) and keeps the record for history;
/// the same address may register again later, with the same or another peer id and role, which
/// resets `registeredAt`.
contract IAM {
    struct Node {
        bytes peerId;
        Role role;
        string metadata;
        bool active;
        uint64 registeredAt;
    }

    /// libp2p peer ids of secp256k1 keys are 39 bytes; the bound only stops storage abuse.
    uint256 public constant MAX_PEER_ID_BYTES = 128;
    uint256 public constant MAX_METADATA_BYTES = 1024;

    ACL public immutable acl;

    mapping(address => Node) private _nodes;
    mapping(bytes32 => address) private _peerOwner;

    event NodeRegistered(address indexed account, Role indexed role, bytes peerId, string metadata);
    event NodeMetadataUpdated(address indexed account, string metadata);
    event NodeDeactivated(address indexed account, address indexed by);

    error NotAllowedByAcl(address account, Role role);
    error InvalidRole(Role role);
    error InvalidPeerId();
    error MetadataTooLong(uint256 length);
    error AlreadyRegistered(address account);
    error PeerIdTaken(bytes peerId, address owner);
    error NotRegistered(address account);
    error NotSelfOrAdmin(address caller, address account);

    constructor(ACL acl_) {
        acl = acl_;
    }

    function register(bytes calldata peerId, Role role, string calldata metadata) external {
        if (role != Role.Oracle && role != Role.Miner && role != Role.Validator) revert InvalidRole(role);
        if (!acl.hasRole(role, msg.sender)) revert NotAllowedByAcl(msg.sender, role);
        if (peerId.length == 0 || peerId.length > MAX_PEER_ID_BYTES) revert InvalidPeerId();
        if (bytes(metadata).length > MAX_METADATA_BYTES) revert MetadataTooLong(bytes(metadata).length);
        Node storage node = _nodes[msg.sender];
        if (node.active) revert AlreadyRegistered(msg.sender);
        bytes32 peerKey = keccak256(peerId);
        address owner = _peerOwner[peerKey];
        if (owner != address(0)) revert PeerIdTaken(peerId, owner);

        _peerOwner[peerKey] = msg.sender;
        node.peerId = peerId;
        node.role = role;
        node.metadata = metadata;
        node.active = true;
        node.registeredAt = uint64(block.timestamp);
        emit NodeRegistered(msg.sender, role, peerId, metadata);
    }

    function updateMetadata(string calldata metadata) external {
        Node storage node = _nodes[msg.sender];
        if (!node.active) revert NotRegistered(msg.sender);
        if (bytes(metadata).length > MAX_METADATA_BYTES) revert MetadataTooLong(bytes(metadata).length);
        node.metadata = metadata;
        emit NodeMetadataUpdated(msg.sender, metadata);
    }

    /// By the node itself or an admin (e.g. to evict a misbehaving node without waiting).
    function deactivate(address account) external {
        if (msg.sender != account && !acl.hasRole(Role.Admin, msg.sender)) {
            revert NotSelfOrAdmin(msg.sender, account);
        }
        Node storage node = _nodes[account];
        if (!node.active) revert NotRegistered(account);
        node.active = false;
        delete _peerOwner[keccak256(node.peerId)];
        emit NodeDeactivated(account, msg.sender);
    }

    function nodeOf(address account) external view returns (Node memory) {
        return _nodes[account];
    }

    /// Zero address when the peer id is unknown or its node was deactivated.
    function addressOfPeer(bytes calldata peerId) external view returns (address) {
        return _peerOwner[keccak256(peerId)];
    }

    /// The node's role while it is registered, active and still granted that role by the ACL;
    /// `Role.None` otherwise. One call instead of `nodeOf` for contracts that only gate on it.
    function activeRoleOf(address account) public view returns (Role) {
        Node storage node = _nodes[account];
        if (!node.active || !acl.hasRole(node.role, account)) return Role.None;
        return node.role;
    }

    function isActive(address account, Role role) external view returns (bool) {
        return role != Role.None && activeRoleOf(account) == role;
    }
}
