"""``peer53 join``: becoming a member with a one-time invite.

Order matters for trust: the joiner connects without a client certificate, checks the CA
the issuer sends against the invite's pin and the issuer's TLS leaf against that CA, and
only then sends the token, its new public key and a signature proving it holds the
private key (which never leaves this machine). It receives its certificate, the CA key,
the member list and a snapshot of the state, checks and installs it, and only then writes
the data directory: a failed join leaves nothing behind.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import nacl.signing
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from node.bootstrap import refuse_existing
from node.config import CONFIG_FILE, NodeConfig, parse_address, validate, write_config
from node.identity import ClusterCA, IdentityFiles, ca_pin
from node.replica import Replica
from node.replication.tls import (
    PeerCertificateError,
    check_issued_by,
    join_client_context,
    node_id_of_certificate,
)
from node.replication.wire import LinkClosed, MessageStream
from node.service import DB_FILE
from node.store.database import SCHEMA_VERSION, Database
from protocol.events import node_id_of
from protocol.frames import FrameError
from protocol.invites import Invite, InviteError, read_invite
from protocol.peer import (
    Error,
    Join,
    JoinCa,
    JoinOk,
    Message,
    MessageError,
    Snapshot,
    join_proof_bytes,
)
from protocol.snapshot import SnapshotError, SnapshotReader

CONNECT_TIMEOUT = 10.0
EXCHANGE_TIMEOUT = 600.0  # a large snapshot takes a while


class JoinError(RuntimeError):
    pass


@dataclass(frozen=True)
class Joined:
    node_id: str
    cluster_id: str
    cluster_name: str
    members: int
    keys: int


@dataclass(frozen=True)
class Welcome:
    ca_pem: str
    ok: JoinOk
    snapshot: SnapshotReader


def _expect(message: Message, kind: type[Message], what: str) -> None:
    if isinstance(message, Error):
        raise JoinError(f"the issuer refused the join: {message.message} ({message.code})")
    if not isinstance(message, kind):
        raise JoinError(f"the issuer sent {type(message).__name__} where {what} was expected")


def _check_issuer(stream: trio.SSLStream[trio.SocketStream], ca_pem: str, invite: Invite) -> None:
    try:
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
    except ValueError:
        raise JoinError("the issuer sent a CA certificate that does not parse") from None
    if ca_pin(ca) != invite.ca_pin:
        raise JoinError(
            f"the issuer's CA does not match the invite's pin ({ca_pin(ca)} is not "
            f"{invite.ca_pin}); refusing to go on"
        )
    leaf = stream.getpeercert(binary_form=True) or b""
    try:
        check_issued_by(leaf, ca)
        if node_id_of_certificate(leaf) != invite.issuer:
            raise JoinError("the node at the invite's address is not the invite's issuer")
    except (PeerCertificateError, ValueError) as exc:
        raise JoinError(str(exc)) from None


async def _exchange(invite: Invite, key: nacl.signing.SigningKey, config: NodeConfig) -> Welcome:
    address = parse_address(invite.peer, "the invite's peer address")
    try:
        with trio.fail_after(CONNECT_TIMEOUT):
            tcp = await trio.open_tcp_stream(address.host, address.port)
    except (OSError, trio.TooSlowError) as exc:
        raise JoinError(f"cannot reach the issuer at {address}: {exc or 'timed out'}") from None
    tls = trio.SSLStream(tcp, join_client_context(), server_hostname=None)
    try:
        with trio.fail_after(CONNECT_TIMEOUT):
            await tls.do_handshake()
    except (trio.BrokenResourceError, trio.TooSlowError) as exc:
        await trio.aclose_forcefully(tcp)
        raise JoinError(f"no TLS 1.3 handshake with the issuer at {address}: {exc!r}") from None
    stream = MessageStream(tls)
    try:
        with trio.fail_after(EXCHANGE_TIMEOUT):
            first = await stream.receive()
            _expect(first, JoinCa, "JOIN_CA")
            assert isinstance(first, JoinCa)
            _check_issuer(tls, first.ca_pem, invite)
            public = node_id_of(key.verify_key)
            proof = key.sign(join_proof_bytes(invite.token, public)).signature.hex()
            request = Join(invite.token, public, config.name, config.advertised_peer(), proof)
            await stream.send([request])
            ok = await stream.receive()
            _expect(ok, JoinOk, "JOIN_OK")
            assert isinstance(ok, JoinOk)
            snapshot = SnapshotReader(ok.cluster)
            while True:
                message = await stream.receive()
                _expect(message, Snapshot, "SNAPSHOT")
                assert isinstance(message, Snapshot)
                if snapshot.add(message):
                    return Welcome(first.ca_pem, ok, snapshot)
    except trio.TooSlowError:
        raise JoinError("the issuer stopped answering during the join") from None
    except (LinkClosed, trio.BrokenResourceError) as exc:
        raise JoinError(f"the issuer closed the connection: {exc}") from None
    except (MessageError, FrameError) as exc:
        raise JoinError(f"the issuer broke the protocol: {exc}") from None
    except SnapshotError as exc:
        raise JoinError(f"the issuer sent a snapshot this node refuses: {exc}") from None
    finally:
        await stream.aclose()


def _install(
    data_dir: Path,
    config: NodeConfig,
    key: nacl.signing.SigningKey,
    invite: Invite,
    welcome: Welcome,
) -> Joined:
    ok = welcome.ok
    if ok.cluster != invite.cluster:
        raise JoinError("the issuer belongs to another cluster than the invite names")
    try:
        ca_key = serialization.load_pem_private_key(ok.ca_key_pem.encode(), password=None)
        node_cert = x509.load_pem_x509_certificate(ok.cert_pem.encode())
    except ValueError:
        raise JoinError("the issuer sent a key or certificate that does not parse") from None
    if not isinstance(ca_key, ed25519.Ed25519PrivateKey):
        raise JoinError("the issuer sent a CA key that is not Ed25519")
    ca = ClusterCA(ca_key, x509.load_pem_x509_certificate(welcome.ca_pem.encode()))
    if ca.cert.public_key() != ca_key.public_key():
        raise JoinError("the CA key the issuer sent does not belong to the pinned CA")
    node_id = node_id_of(key.verify_key)
    if node_id_of_certificate(node_cert.public_bytes(serialization.Encoding.DER)) != node_id:
        raise JoinError("the certificate the issuer sent is not for this node's key")
    created = not data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        _load_snapshot(data_dir / DB_FILE, node_id, ok.cluster, welcome)
        IdentityFiles(data_dir).write(key, ca, ok.cert_pem)
        write_config(data_dir, config)
    except BaseException:
        _remove_partial(data_dir, created)
        raise
    return Joined(
        node_id, ok.cluster, ok.cluster_name, len(ok.members), len(welcome.snapshot.entries)
    )


def _load_snapshot(path: Path, node_id: str, cluster_id: str, welcome: Welcome) -> None:
    db = Database(path)
    try:
        db.set_meta(
            {"node_id": node_id, "cluster_id": cluster_id, "schema_version": str(SCHEMA_VERSION)}
        )
        replica = Replica(db, cluster_id, node_id)
        snapshot = welcome.snapshot
        assert snapshot.vv is not None  # set by its first message
        try:
            prepared = replica.prepare_install(snapshot.vv, snapshot.entries)
        except SnapshotError as exc:
            raise JoinError(f"the issuer sent a snapshot this node refuses: {exc}") from None
        replica.finish(prepared, replica.commit(prepared))
    finally:
        db.close()


def _remove_partial(data_dir: Path, created: bool) -> None:
    if created:
        shutil.rmtree(data_dir, ignore_errors=True)
        return
    for name in (DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm", CONFIG_FILE):
        (data_dir / name).unlink(missing_ok=True)
    files = IdentityFiles(data_dir)
    for path in (files.node_key, files.node_cert, files.ca_key, files.ca_cert):
        path.unlink(missing_ok=True)


def join_cluster(token: str, data_dir: Path, config: NodeConfig) -> Joined:
    """The whole join; JoinError (or InviteError) with a one-line reason on failure."""
    validate(config)
    config.advertised_peer()  # a wildcard peer address needs --advertise: refuse it up front
    refuse_existing(data_dir)
    invite = read_invite(token.strip(), int(time.time()))
    key = nacl.signing.SigningKey.generate()
    welcome = trio.run(_exchange, invite, key, config)
    return _install(data_dir, config, key, invite, welcome)


__all__ = ["InviteError", "JoinError", "Joined", "join_cluster"]
