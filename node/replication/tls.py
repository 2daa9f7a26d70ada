"""TLS 1.3 contexts for peer links, and reading a peer's node id from its certificate.

The peer port requests a client certificate but does not require one (DESIGN "Peer
links"): a connection without one may only join. Host names play no part: certificates
name a node by its key, and after the handshake the key must be an active member's.
"""

from __future__ import annotations

import ssl

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from node.identity import IdentityFiles


class PeerCertificateError(ValueError):
    pass


def _tls13(context: ssl.SSLContext) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    return context


def server_context(files: IdentityFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=files.ca_cert.read_text())
    context.load_cert_chain(files.node_cert, files.node_key)
    context.verify_mode = ssl.CERT_OPTIONAL  # a joiner has no certificate yet
    return _tls13(context)


def member_client_context(files: IdentityFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=files.ca_cert.read_text())
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(files.node_cert, files.node_key)
    return _tls13(context)


def join_client_context() -> ssl.SSLContext:
    """The joiner has only a pin: it checks the leaf against the pinned CA itself."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return _tls13(context)


def node_id_of_certificate(der: bytes) -> str:
    cert = x509.load_der_x509_certificate(der)
    key = cert.public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise PeerCertificateError("the peer's certificate key is not Ed25519")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def check_issued_by(leaf_der: bytes, ca: x509.Certificate) -> None:
    leaf = x509.load_der_x509_certificate(leaf_der)
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise PeerCertificateError(
            f"the issuer's TLS certificate is not signed by the pinned CA ({exc})"
        ) from None
