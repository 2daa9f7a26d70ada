"""``peer53 init``: a new cluster with this node as its first member.

Everything a later join or cluster feature needs is created here (cluster id and name, CA,
node certificate, the member register), so no data directory ever needs a migration.
The directory is refused if it already holds a node, so init can never overwrite keys.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import nacl.signing

from node.config import CONFIG_FILE, NodeConfig, validate, write_config
from node.identity import ClusterCA, IdentityFiles, write_private
from node.service import DB_FILE, NodeState
from node.store.database import SCHEMA_VERSION, Database
from protocol.events import node_id_of
from protocol.statekeys import member_key, setting_key, token_key
from protocol.tokens import new_token

ADMIN_TOKEN_FILE = "admin.token"
_NODE_FILES = (CONFIG_FILE, DB_FILE, "node.key", "ca.key", ADMIN_TOKEN_FILE)


class AlreadyInitialised(RuntimeError):
    pass


def refuse_existing(data_dir: Path) -> None:
    """init and join never overwrite a node's keys or data."""
    present = [name for name in _NODE_FILES if (data_dir / name).exists()]
    if present:
        raise AlreadyInitialised(
            f"{data_dir} already holds a peer53 node ({present[0]} exists); "
            "refusing to overwrite it. Use another --data-dir, or remove this one first."
        )


def initialise(data_dir: Path, config: NodeConfig, cluster_name: str) -> str:
    """Create the cluster; returns the admin API token."""
    validate(config)
    config.advertised_peer()  # refuse a wildcard peer address without --advertise, up front
    refuse_existing(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = nacl.signing.SigningKey.generate()
    node_id = node_id_of(key.verify_key)
    cluster_id = secrets.token_hex(16)
    IdentityFiles(data_dir).write_new(key, ClusterCA.create(cluster_name))
    write_config(data_dir, config)
    db = Database(data_dir / DB_FILE)
    db.set_meta(
        {"node_id": node_id, "cluster_id": cluster_id, "schema_version": str(SCHEMA_VERSION)}
    )
    state = NodeState(data_dir, config, db)
    token = new_token()
    try:
        state.write_now(
            "cluster.init",
            {
                member_key(node_id): {
                    "name": config.name,
                    "peer": config.advertised_peer(),
                    "status": "active",
                },
                setting_key("cluster.name"): {"value": cluster_name},
                token_key(token.id): {
                    "name": "admin (created by init)",
                    "role": "admin",
                    "zones": None,
                    "hash": token.hash,
                },
            },
        )
    finally:
        state.close()
    write_private(data_dir / ADMIN_TOKEN_FILE, (token.secret_text + "\n").encode())
    return token.secret_text
