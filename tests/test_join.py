"""``peer53 join`` against a real issuer: every way a token can fail, and the race.

Each failure must end with one clear line, exit 1, leave no data directory, and change
nothing on the issuer.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import nacl.signing
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from node.identity import IdentityFiles, ca_pin, load_signing_key
from protocol.invites import mint_invite
from scripts.benchlib.servers import free_port
from tests.cluster import ctl, fast_timers, join_args, node_id
from tests.nodeproc import BIN, NodeProcess, peer53


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess.init(Path(tmp_path_factory.mktemp("issuer")) / "n1")
    config = node.data_dir / "peer53.toml"
    # a fixed peer port, so that invites stay valid across the restart test
    text = config.read_text()
    config.write_text(text.replace('peer = "127.0.0.1:0"', f'peer = "127.0.0.1:{free_port()}"'))
    fast_timers(node.data_dir)
    node.start()
    try:
        yield node
    finally:
        assert node.stop() == 0


def _cluster(issuer: NodeProcess) -> dict[str, object]:
    with issuer.client() as api:
        return dict(api.get("/api/v1/cluster").raise_for_status().json())


def _facts(issuer: NodeProcess) -> tuple[str, str, str, nacl.signing.SigningKey]:
    status = _cluster(issuer)
    listen = json.loads((issuer.data_dir / "listen.json").read_text())
    files = IdentityFiles(issuer.data_dir)
    pin = ca_pin(x509.load_pem_x509_certificate(files.ca_cert.read_bytes()))
    return status["cluster"]["id"], listen["peer"], pin, load_signing_key(files.node_key)  # type: ignore[index]


def _refused(issuer: NodeProcess, token: str, tmp_path: Path, expect: str) -> None:
    before = _cluster(issuer)["merkle_root"]
    target = tmp_path / "joiner"
    result = peer53(*join_args(token, target, "joiner"), check=False)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("peer53: error: ") and expect in last, result.stderr
    assert "Traceback" not in result.stderr
    assert not target.exists()
    assert _cluster(issuer)["merkle_root"] == before


def _sign(claims: dict[str, object], key: nacl.signing.SigningKey) -> str:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(key))
    return jwt.encode(claims, private, algorithm="EdDSA")


def _claims(
    issuer: NodeProcess, **over: object
) -> tuple[dict[str, object], nacl.signing.SigningKey]:
    cluster, peer, pin, key = _facts(issuer)
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": bytes(key.verify_key).hex(),
        "aud": cluster,
        "jti": "f" * 32,
        "iat": now,
        "exp": now + 600,
        "peer": peer,
        "ca_pin": pin,
    }
    claims.update(over)
    return claims, key


def test_expired(issuer: NodeProcess, tmp_path: Path) -> None:
    cluster, peer, pin, key = _facts(issuer)
    token = mint_invite(key, cluster, peer, pin, 60, int(time.time()) - 120).token
    _refused(issuer, token, tmp_path, "the invite has expired")


def test_used_twice_also_after_the_issuer_restarts(issuer: NodeProcess, tmp_path: Path) -> None:
    token = ctl(issuer, "invite", "create").stdout.strip()
    first = peer53(*join_args(token, tmp_path / "first", "first"), check=False)
    assert first.returncode == 0, first.stderr
    _refused(issuer, token, tmp_path, "already been used")
    assert issuer.stop() == 0
    issuer.start()
    _refused(issuer, token, tmp_path, "already been used")
    invites = {i["used_by"] for i in _cluster(issuer)["invites"] if i["status"] == "used"}  # type: ignore[attr-defined]
    assert node_id(tmp_path / "first") in invites


def test_forged_signature(issuer: NodeProcess, tmp_path: Path) -> None:
    claims, _ = _claims(issuer)
    _refused(issuer, _sign(claims, nacl.signing.SigningKey.generate()), tmp_path, "not valid")


def test_minted_by_a_key_that_is_not_the_node_at_its_address(
    issuer: NodeProcess, tmp_path: Path
) -> None:
    stranger = nacl.signing.SigningKey.generate()
    claims, _ = _claims(issuer, iss=bytes(stranger.verify_key).hex())
    _refused(issuer, _sign(claims, stranger), tmp_path, "not the invite's issuer")


def test_for_another_cluster(issuer: NodeProcess, tmp_path: Path) -> None:
    claims, key = _claims(issuer, aud="0" * 32)
    _refused(issuer, _sign(claims, key), tmp_path, "another cluster")


def test_tampered_claims(issuer: NodeProcess, tmp_path: Path) -> None:
    token = ctl(issuer, "invite", "create", "--ttl", "60").stdout.strip()
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] += 86400
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _refused(issuer, f"{head}.{forged}.{signature}", tmp_path, "not valid")


def test_wrong_ca_pin(issuer: NodeProcess, tmp_path: Path) -> None:
    claims, key = _claims(issuer, ca_pin="sha256:" + "0" * 64)
    _refused(issuer, _sign(claims, key), tmp_path, "does not match the invite's pin")


def test_issuer_unreachable(issuer: NodeProcess, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    claims, key = _claims(issuer, peer=f"127.0.0.1:{closed}")
    _refused(issuer, _sign(claims, key), tmp_path, "cannot reach the issuer")


def test_garbage_token(issuer: NodeProcess, tmp_path: Path) -> None:
    _refused(issuer, "not-a-token", tmp_path, "not an invite token")


def test_two_joins_racing_with_one_token(issuer: NodeProcess, tmp_path: Path) -> None:
    token = ctl(issuer, "invite", "create").stdout.strip()
    racers = [
        subprocess.Popen(
            [str(BIN / "peer53"), *join_args(token, tmp_path / f"r{i}", f"r{i}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outcomes = [(p.wait(timeout=60), p.communicate()[1]) for p in racers]
    assert sorted(code for code, _ in outcomes) == [0, 1], outcomes
    loser = next(err for code, err in outcomes if code == 1)
    assert "already been used" in loser
    assert sum((tmp_path / f"r{i}").exists() for i in range(2)) == 1
