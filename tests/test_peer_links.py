"""The peer port of a real node, spoken to by a hand-driven client.

What is refused: a connection without a member certificate that tries anything but
JOIN, a JOIN of the wrong form, a CA-signed key that is not a member, a HELLO that names
someone else, and forged events on an established link. What must survive: the link and
the node.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nacl.signing
import pytest
import trio
from cryptography.hazmat.primitives import serialization

from node.identity import ClusterCA, IdentityFiles, load_signing_key
from node.replication.tls import join_client_context, member_client_context
from node.replication.wire import LinkClosed, MessageStream
from node.store.database import Database
from protocol.events import EventBody, SignedEvent, decode_event, node_id_of, sign_event
from protocol.peer import (
    PROTOCOL_VERSION,
    Error,
    Events,
    Hello,
    Join,
    JoinCa,
    Message,
    Ping,
    Pong,
    join_proof_bytes,
)
from protocol.statekeys import setting_key
from tests.cluster import fast_timers, join, node_id
from tests.nodeproc import NodeProcess

DEADLINE = 10


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, Path]]:
    """A running node, and the data dir of a member that joined but never runs."""
    base = Path(tmp_path_factory.mktemp("links"))
    node = NodeProcess.init(base / "n1")
    fast_timers(node.data_dir)
    node.start()
    try:
        join(node, base / "n2", "n2")
        yield node, base / "n2"
    finally:
        assert node.stop() == 0


def _peer_port(node: NodeProcess) -> int:
    return int(json.loads((node.data_dir / "listen.json").read_text())["peer"].rsplit(":")[1])


async def _connect(node: NodeProcess, files: IdentityFiles | None) -> MessageStream:
    context = join_client_context() if files is None else member_client_context(files)
    tcp = await trio.open_tcp_stream("127.0.0.1", _peer_port(node))
    tls = trio.SSLStream(tcp, context, server_hostname=None)
    await tls.do_handshake()
    return MessageStream(tls)


async def _until(stream: MessageStream, kind: type[Message]) -> Message:
    """Read past what the node sends anyway (events, acks) up to a ``kind`` message."""
    with trio.fail_after(DEADLINE):
        while not isinstance(message := await stream.receive(), kind):
            if isinstance(message, Error):
                return message
        return message


async def _closed(stream: MessageStream) -> bool:
    """True once the node has closed the connection (which is then closed here too)."""
    try:
        with trio.fail_after(DEADLINE):
            while True:
                await stream.receive()
    except (LinkClosed, trio.BrokenResourceError):
        return True
    finally:
        await stream.aclose()


def _status(node: NodeProcess) -> dict[str, object]:
    with node.client() as api:
        return dict(api.get("/api/v1/cluster").raise_for_status().json())


def _hello(files_dir: Path, node_id_: str, cluster: str) -> Hello:
    db = Database(files_dir / "peer53.db")
    try:
        return Hello(PROTOCOL_VERSION, cluster, node_id_, db.version_vector(), "0" * 64)
    finally:
        db.close()


async def test_without_a_certificate_only_join_is_allowed(
    nodes: tuple[NodeProcess, Path],
) -> None:
    node, _ = nodes
    stream = await _connect(node, None)
    assert isinstance(await _until(stream, JoinCa), JoinCa)
    await stream.send([Hello(PROTOCOL_VERSION, "x", "0" * 64, {}, "0" * 64)])
    error = await _until(stream, Error)
    assert isinstance(error, Error) and error.code == "protocol"
    assert await _closed(stream)


@pytest.mark.parametrize(
    ("name", "peer", "proof_case", "code"),
    [
        ("n3", "127.0.0.1:7099", str.upper, "bad_proof"),
        ("", "127.0.0.1:7099", str, "invalid_name"),
        ("n3", "::1:7099", str, "invalid_peer"),
    ],
)
async def test_a_join_of_the_wrong_form_is_refused_and_leaves_the_invite_open(
    nodes: tuple[NodeProcess, Path],
    name: str,
    peer: str,
    proof_case: Callable[[str], str],
    code: str,
) -> None:
    node, _ = nodes
    with node.client() as api:
        invite = api.post("/api/v1/invites", json={}).raise_for_status().json()
    joiner = nacl.signing.SigningKey.generate()
    key = node_id_of(joiner.verify_key)
    proof = joiner.sign(join_proof_bytes(invite["token"], key)).signature.hex()
    stream = await _connect(node, None)
    assert isinstance(await _until(stream, JoinCa), JoinCa)
    await stream.send([Join(invite["token"], key, name, peer, proof_case(proof))])
    error = await _until(stream, Error)
    assert isinstance(error, Error) and error.code == code, error
    assert await _closed(stream)
    with node.client() as api:
        after = api.get(f"/api/v1/invites/{invite['jti']}").raise_for_status().json()
    assert after["status"] == "open"


async def test_a_ca_signed_key_that_is_not_a_member_is_refused(
    nodes: tuple[NodeProcess, Path], tmp_path: Path
) -> None:
    node, _ = nodes
    stranger = nacl.signing.SigningKey.generate()
    ca = ClusterCA.load(IdentityFiles(node.data_dir))
    files = IdentityFiles(tmp_path)
    pem = ca.issue(stranger.verify_key).public_bytes(serialization.Encoding.PEM).decode()
    files.write(stranger, ca, pem)
    stream = await _connect(node, files)
    cluster = str(_status(node)["cluster"]["id"])  # type: ignore[index]
    await stream.send(
        [Hello(PROTOCOL_VERSION, cluster, node_id_of(stranger.verify_key), {}, "0" * 64)]
    )
    error = await _until(stream, Error)
    assert isinstance(error, Error) and error.code == "not_member"
    assert await _closed(stream)
    assert _status(node)["refused_links"]["not_member"] >= 1  # type: ignore[index]


async def test_a_hello_naming_another_node_is_refused(nodes: tuple[NodeProcess, Path]) -> None:
    node, member_dir = nodes
    stream = await _connect(node, IdentityFiles(member_dir))
    cluster = str(_status(node)["cluster"]["id"])  # type: ignore[index]
    await stream.send([_hello(member_dir, node_id(node.data_dir), cluster)])
    error = await _until(stream, Error)
    assert isinstance(error, Error) and error.code == "identity"
    assert await _closed(stream)


def _event(key: nacl.signing.SigningKey, cluster: str, seq: int, vv: dict[str, int]) -> SignedEvent:
    origin = node_id_of(key.verify_key)
    body = EventBody(
        cluster,
        origin,
        seq,
        vv,
        time.time_ns() // 1_000_000 << 16,
        "test",
        {setting_key("probe"): {"value": seq}},
    )
    return sign_event(body, key)


async def test_forged_events_on_a_real_link_are_refused_and_the_link_lives(
    nodes: tuple[NodeProcess, Path],
) -> None:
    node, member_dir = nodes
    member_key = load_signing_key(IdentityFiles(member_dir).node_key)
    me = node_id_of(member_key.verify_key)
    status = _status(node)
    cluster = str(status["cluster"]["id"])  # type: ignore[index]
    hello = _hello(member_dir, me, cluster)
    stream = await _connect(node, IdentityFiles(member_dir))
    try:
        await stream.send([hello])
        assert isinstance(await _until(stream, Hello), Hello)
        good = _event(member_key, cluster, 1, dict(hello.vv))
        tampered = decode_event(
            good.signature + good.body_bytes.replace(b'"value":1', b'"value":2'), verify=False
        )
        foreign = _event(member_key, "another-cluster", 1, dict(hello.vv))
        stranger = _event(nacl.signing.SigningKey.generate(), cluster, 1, dict(hello.vv))
        await stream.send([Events([tampered, foreign, stranger]), Ping(dict(hello.vv))])
        assert isinstance(await _until(stream, Pong), Pong)  # the link is still up
        after = _status(node)
        assert after["merkle_root"] == status["merkle_root"]
        rejected = after["rejected_events"]
        for reason in ("bad_signature", "foreign_cluster", "unknown_origin"):
            assert rejected[reason] >= 1, rejected  # type: ignore[index]
        await stream.send([Events([good])])
        deadline = time.monotonic() + DEADLINE
        while _status(node)["clock"]["version_vector"].get(me) != 1:  # type: ignore[index,union-attr]
            assert time.monotonic() < deadline, "the good event was not applied"
            await trio.sleep(0.05)
        root = _status(node)["merkle_root"]
        reused = _event(member_key, cluster, 1, {**hello.vv, "ff" * 32: 0})  # same seq, new id
        await stream.send([Events([good, reused]), Ping({})])
        assert isinstance(await _until(stream, Pong), Pong)
        final = _status(node)
        assert final["rejected_events"]["sequence_reused"] == 1  # type: ignore[index]
        assert final["merkle_root"] == root
    finally:
        await stream.aclose()
