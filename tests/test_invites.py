"""Invite tokens: what the joiner and the issuer accept, and every way a token fails."""

import base64
import json

import jwt
import nacl.signing
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.events import node_id_of
from protocol.invites import InviteError, mint_invite, read_invite, verify_invite

NOW = 1_800_000_000
PIN = "sha256:" + "ab" * 32


@pytest.fixture
def key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey.generate()


def test_round_trip(key: nacl.signing.SigningKey) -> None:
    invite = mint_invite(key, "cluster-1", "127.0.0.1:7053", PIN, 3600, NOW)
    seen = read_invite(invite.token, NOW + 10)
    assert seen == invite
    assert verify_invite(invite.token, node_id_of(key.verify_key), "cluster-1", NOW + 10) == invite
    other = mint_invite(key, "cluster-1", "127.0.0.1:7053", PIN, 3600, NOW)
    assert other.jti != invite.jti


def test_expired(key: nacl.signing.SigningKey) -> None:
    invite = mint_invite(key, "c", "127.0.0.1:7053", PIN, 60, NOW)
    for check in (
        lambda: read_invite(invite.token, NOW + 60),
        lambda: verify_invite(invite.token, node_id_of(key.verify_key), "c", NOW + 61),
    ):
        with pytest.raises(InviteError) as err:
            check()
        assert err.value.code == "invite_expired"


def test_other_cluster(key: nacl.signing.SigningKey) -> None:
    invite = mint_invite(key, "c1", "127.0.0.1:7053", PIN, 60, NOW)
    with pytest.raises(InviteError) as err:
        verify_invite(invite.token, node_id_of(key.verify_key), "c2", NOW)
    assert err.value.code == "wrong_cluster"


def _tamper(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


@pytest.mark.parametrize(
    "changes", [{"exp": NOW + 10**6}, {"peer": "127.0.0.2:7053"}, {"ca_pin": "sha256:" + "cd" * 32}]
)
def test_tampered_claims_break_the_signature(
    key: nacl.signing.SigningKey, changes: dict[str, object]
) -> None:
    token = _tamper(mint_invite(key, "c", "127.0.0.1:7053", PIN, 60, NOW).token, **changes)
    for check in (
        lambda: read_invite(token, NOW),
        lambda: verify_invite(token, node_id_of(key.verify_key), "c", NOW),
    ):
        with pytest.raises(InviteError) as err:
            check()
        assert err.value.code == "bad_signature"


def test_forged_by_another_key(key: nacl.signing.SigningKey) -> None:
    forger = nacl.signing.SigningKey.generate()
    forged = mint_invite(forger, "c", "127.0.0.1:7053", PIN, 60, NOW)
    # The joiner cannot tell (the forger signed with the key it names) ...
    assert read_invite(forged.token, NOW).issuer == node_id_of(forger.verify_key)
    # ... but the issuer can: it was not signed with the issuer's key.
    with pytest.raises(InviteError) as err:
        verify_invite(forged.token, node_id_of(key.verify_key), "c", NOW)
    assert err.value.code == "bad_signature"


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_garbage(token: str) -> None:
    with pytest.raises(InviteError) as err:
        read_invite(token, NOW)
    assert err.value.code == "invalid_invite"


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        ({"jti": 7}, "JWT ID must be a string"),
        ({"jti": "../" + "0" * 29}, "jti"),
        ({"aud": ["c", "other"]}, "aud"),
        ({"exp": True}, "times"),
    ],
)
def test_signed_claims_of_the_wrong_form_are_refused(
    key: nacl.signing.SigningKey, claims: dict[str, object], problem: str
) -> None:
    """Signed by the issuer's own key, so only the form of the claims is at fault."""
    issuer = node_id_of(key.verify_key)
    body = {
        "iss": issuer,
        "aud": "c",
        "jti": "0" * 32,
        "iat": NOW,
        "exp": NOW + 60,
        "peer": "127.0.0.1:7053",
        "ca_pin": PIN,
        **claims,
    }
    signer = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(key))
    token = jwt.encode(body, signer, algorithm="EdDSA")
    for check in (
        lambda: read_invite(token, NOW),
        lambda: verify_invite(token, issuer, "c", NOW),
    ):
        with pytest.raises(InviteError, match=problem) as err:
            check()
        assert err.value.code == "invalid_invite"
