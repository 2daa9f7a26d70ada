"""One-time invites: JWTs signed (EdDSA) by the issuing node's key.

Claims: ``iss`` the issuer's node id (the hex of its Ed25519 public key), ``aud`` the
cluster id, ``jti`` a unique id, ``iat`` and ``exp``, ``peer`` the issuer's advertised
peer address, and ``ca_pin`` (``sha256:`` + hex SHA-256 of the cluster CA certificate's
DER SubjectPublicKeyInfo, kubeadm's pin format).

The joiner can check the token's signature against the key its ``iss`` names, which
catches a damaged or edited token early, but that proves nothing about who issued it:
trust comes from the CA pin and the TLS handshake. Only the issuer accepts its own invites,
so "use once" is a record the issuer keeps, not a cluster-wide agreement.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
import nacl.signing
from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.canonical import is_int
from protocol.events import NODE_ID_RE, node_id_of

_PIN_RE = re.compile(r"sha256:[0-9a-f]{64}")
_JTI_RE = re.compile(r"[0-9a-f]{32}")
_REQUIRED = ["iss", "aud", "jti", "iat", "exp", "peer", "ca_pin"]


class InviteError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Invite:
    token: str
    issuer: str
    cluster: str
    jti: str
    issued_at: int
    expires: int
    peer: str
    ca_pin: str


def mint_invite(
    key: nacl.signing.SigningKey,
    cluster_id: str,
    peer: str,
    ca_pin: str,
    ttl_seconds: int,
    now: int,
) -> Invite:
    if ttl_seconds <= 0:
        raise InviteError("invalid_ttl", "an invite needs a positive lifetime")
    issuer = node_id_of(key.verify_key)
    jti = secrets.token_hex(16)
    claims = {
        "iss": issuer,
        "aud": cluster_id,
        "jti": jti,
        "iat": now,
        "exp": now + ttl_seconds,
        "peer": peer,
        "ca_pin": ca_pin,
    }
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(key))
    token = jwt.encode(claims, private, algorithm="EdDSA")
    return Invite(token, issuer, cluster_id, jti, now, now + ttl_seconds, peer, ca_pin)


def _public_key(node_id: str) -> ed25519.Ed25519PublicKey:
    return ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(node_id))


def _decode(token: str, key: ed25519.Ed25519PublicKey, audience: str | None, now: int) -> Any:
    # Expiry is checked against the caller's ``now`` (in _claims_to_invite), not PyJWT's
    # own clock read, so the rule is one function of its inputs.
    options: Any = {
        "require": _REQUIRED,
        "verify_aud": audience is not None,
        "verify_exp": False,
        "verify_iat": False,
    }
    try:
        return jwt.decode(token, key, algorithms=["EdDSA"], audience=audience, options=options)
    except jwt.InvalidAudienceError:
        raise InviteError("wrong_cluster", "the invite is for another cluster") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InviteError("invalid_invite", f"the invite lacks the {exc.claim} claim") from None
    except jwt.InvalidSignatureError:
        raise InviteError(
            "bad_signature", "the invite's signature is not valid (forged or altered)"
        ) from None
    except jwt.InvalidTokenError as exc:
        raise InviteError("invalid_invite", f"not a valid invite: {exc}") from None


def _claims_to_invite(token: str, claims: Any, now: int) -> Invite:
    if not isinstance(claims.get("peer"), str) or not claims["peer"]:
        raise InviteError("invalid_invite", "the invite has no peer address")
    if not isinstance(claims.get("ca_pin"), str) or not _PIN_RE.fullmatch(claims["ca_pin"]):
        raise InviteError("invalid_invite", "the invite's ca_pin is not sha256:<64 hex>")
    if not (is_int(claims["exp"], 0) and is_int(claims["iat"], 0)):
        raise InviteError("invalid_invite", "the invite's times are not whole seconds")
    if not isinstance(claims["jti"], str) or not _JTI_RE.fullmatch(claims["jti"]):
        raise InviteError("invalid_invite", "the invite's jti is not 32 hex digits")
    if not isinstance(claims["aud"], str):
        raise InviteError("invalid_invite", "the invite's aud is not one cluster id")
    if claims["exp"] <= now:
        raise InviteError("invite_expired", "the invite has expired")
    return Invite(
        token,
        claims["iss"],
        claims["aud"],
        claims["jti"],
        claims["iat"],
        claims["exp"],
        claims["peer"],
        claims["ca_pin"],
    )


def read_invite(token: str, now: int) -> Invite:
    """The joiner's view: well-formed, signed by the key it names, not expired."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise InviteError("invalid_invite", f"not an invite token: {exc}") from None
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or not NODE_ID_RE.fullmatch(issuer):
        raise InviteError("invalid_invite", "the invite does not name its issuing node")
    claims = _decode(token, _public_key(issuer), None, now)
    return _claims_to_invite(token, claims, now)


def verify_invite(token: str, issuer: str, cluster_id: str, now: int) -> Invite:
    """The issuer's check: its own signature, this cluster, not expired."""
    claims = _decode(token, _public_key(issuer), cluster_id, now)
    if claims.get("iss") != issuer:
        raise InviteError("wrong_issuer", "the invite was issued by another node")
    return _claims_to_invite(token, claims, now)
