// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ACL, Role} from "./ACL.sol";

/// Model id -> what a miner must fetch (IPFS CID) and check (sha256, size) before serving it.
contract ModelRegistry {
    struct Model {
        string name;
        string cid;
        bytes32 sha256Digest;
        uint64 sizeBytes;
        string quantization;
        bool active;
        uint64 registeredAt;
    }

    ACL public immutable acl;
    /// Ids start at 1, so 0 means "no model" everywhere.
    uint256 public modelCount;
    mapping(uint256 => Model) private _models;

    event ModelRegistered(
        uint256 indexed modelId,
        string name,
        string cid,
        bytes32 sha256Digest,
        uint64 sizeBytes,
        string quantization
    );
    event ModelUpdated(
        uint256 indexed modelId,
        string name,
        string cid,
        bytes32 sha256Digest,
        uint64 sizeBytes,
        string quantization
    );
    event ModelActivationChanged(uint256 indexed modelId, bool active);

    error NotAdmin(address account);
    error UnknownModel(uint256 modelId);
    error InvalidModel();
    error ActivationUnchanged(uint256 modelId, bool active);

    constructor(ACL acl_) {
        acl = acl_;
    }

    modifier onlyAdmin() {
        if (!acl.hasRole(Role.Admin, msg.sender)) revert NotAdmin(msg.sender);
        _;
    }

    function registerModel(
        string calldata name,
        string calldata cid,
        bytes32 sha256Digest,
        uint64 sizeBytes,
        string calldata quantization
    ) external onlyAdmin returns (uint256 modelId) {
        _validate(name, cid, sha256Digest, sizeBytes);
        modelId = ++modelCount;
        _models[modelId] = Model(name, cid, sha256Digest, sizeBytes, quantization, true, uint64(block.timestamp));
        emit ModelRegistered(modelId, name, cid, sha256Digest, sizeBytes, quantization);
    }

    function updateModel(
        uint256 modelId,
        string calldata name,
        string calldata cid,
        bytes32 sha256Digest,
        uint64 sizeBytes,
        string calldata quantization
    ) external onlyAdmin {
        Model storage model = _existing(modelId);
        _validate(name, cid, sha256Digest, sizeBytes);
        model.name = name;
        model.cid = cid;
        model.sha256Digest = sha256Digest;
        model.sizeBytes = sizeBytes;
        model.quantization = quantization;
        emit ModelUpdated(modelId, name, cid, sha256Digest, sizeBytes, quantization);
    }

    function setModelActive(uint256 modelId, bool active) external onlyAdmin {
        Model storage model = _existing(modelId);
        if (model.active == active) revert ActivationUnchanged(modelId, active);
        model.active = active;
        emit ModelActivationChanged(modelId, active);
    }

    function modelOf(uint256 modelId) external view returns (Model memory) {
        return _existing(modelId);
    }

    function exists(uint256 modelId) public view returns (bool) {
        return modelId != 0 && modelId <= modelCount;
    }

    function isModelActive(uint256 modelId) external view returns (bool) {
        return exists(modelId) && _models[modelId].active;
    }

    function _existing(uint256 modelId) private view returns (Model storage) {
        if (!exists(modelId)) revert UnknownModel(modelId);
        return _models[modelId];
    }

    function _validate(string calldata name, string calldata cid, bytes32 sha256Digest, uint64 sizeBytes)
        private
        pure
    {
        if (bytes(name).length == 0 || bytes(cid).length == 0 || sha256Digest == bytes32(0) || sizeBytes == 0) {
            revert InvalidModel();
        }
    }
}
