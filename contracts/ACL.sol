// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Roles known to the network. The numeric values (0..4) are part of the off-chain contract:
/// src/chain/enums.ts mirrors them, so new roles are appended.
enum Role {
    None,
    Admin,
    Oracle,
    Miner,
    /// Holds a model and re-runs miners' outputs so an oracle can reject the ones that fail.
    Validator
}

/// Who may act, by role. An address may hold several roles; admins grant and revoke.
contract ACL {
    /// Bit `1 << uint8(role)` set when the account holds that role.
    mapping(address => uint256) private _roleBits;
    /// Counted so the last admin cannot lock the network out of administration.
    uint256 public adminCount;

    event RoleGranted(Role indexed role, address indexed account, address indexed by);
    event RoleRevoked(Role indexed role, address indexed account, address indexed by);

    error NotAdmin(address account);
    error InvalidRole(Role role);
    error ZeroAddress();
    error RoleAlreadyGranted(Role role, address account);
    error RoleNotGranted(Role role, address account);
    error LastAdmin(address account);

    constructor() {
        _grant(Role.Admin, msg.sender);
    }

    modifier onlyAdmin() {
        if (!hasRole(Role.Admin, msg.sender)) revert NotAdmin(msg.sender);
        _;
    }

    function hasRole(Role role, address account) public view returns (bool) {
        return _roleBits[account] & (uint256(1) << uint8(role)) != 0;
    }

    function grantRole(Role role, address account) external onlyAdmin {
        if (role == Role.None) revert InvalidRole(role);
        if (account == address(0)) revert ZeroAddress();
        if (hasRole(role, account)) revert RoleAlreadyGranted(role, account);
        _grant(role, account);
    }

    function revokeRole(Role role, address account) external onlyAdmin {
        if (role == Role.None) revert InvalidRole(role);
        if (!hasRole(role, account)) revert RoleNotGranted(role, account);
        if (role == Role.Admin && adminCount == 1) revert LastAdmin(account);
        _roleBits[account] &= ~(uint256(1) << uint8(role));
        if (role == Role.Admin) adminCount -= 1;
        emit RoleRevoked(role, account, msg.sender);
    }

    function _grant(Role role, address account) private {
        _roleBits[account] |= uint256(1) << uint8(role);
        if (role == Role.Admin) adminCount += 1;
        emit RoleGranted(role, account, msg.sender);
    }
}
