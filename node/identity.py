"""Node and cluster identity: the node's Ed25519 key, the cluster CA, node certificates.

The node key is the one key a node has: it signs events and is the key of its TLS
certificate, so a completed mutual-TLS handshake names the node on the other end. Keys are
written mode 0600 before any content goes in, so a private key is never readable by others,
not even briefly.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.signing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from protocol.events import node_id_of

CA_VALIDITY = datetime.timedelta(days=3650)
NODE_VALIDITY = datetime.timedelta(days=825)
# Certificates start a day in the past so that a peer whose clock runs hours behind (a
# skewed or unsynchronised host) still accepts a certificate made just now.
BACKDATE = datetime.timedelta(days=1)


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _pem_private(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_signing_key(path: Path) -> nacl.signing.SigningKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return nacl.signing.SigningKey(seed)


def _certificate(
    subject: str,
    public_key: ed25519.Ed25519PublicKey,
    issuer: x509.Name | None,
    signer: ed25519.Ed25519PrivateKey,
    validity: datetime.timedelta,
    ca: bool,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(signer, algorithm=None)


@dataclass(frozen=True)
class ClusterCA:
    key: ed25519.Ed25519PrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, cluster_name: str) -> ClusterCA:
        key = ed25519.Ed25519PrivateKey.generate()
        cert = _certificate(
            f"peer53 cluster CA {cluster_name}", key.public_key(), None, key, CA_VALIDITY, True
        )
        return cls(key, cert)

    @classmethod
    def load(cls, files: IdentityFiles) -> ClusterCA:
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError(f"{files.ca_key} is not an Ed25519 private key")
        return cls(key, x509.load_pem_x509_certificate(files.ca_cert.read_bytes()))

    def key_pem(self) -> str:
        return _pem_private(self.key).decode()

    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, node_key: nacl.signing.VerifyKey) -> x509.Certificate:
        public = ed25519.Ed25519PublicKey.from_public_bytes(bytes(node_key))
        return _certificate(
            node_id_of(node_key),
            public,
            self.cert.subject,
            self.key,
            NODE_VALIDITY,
            False,
        )

    def pin(self) -> str:
        return ca_pin(self.cert)


def ca_pin(cert: x509.Certificate) -> str:
    """kubeadm's pin format: SHA-256 of the CA's DER SubjectPublicKeyInfo."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return "sha256:" + digest.finalize().hex()


@dataclass(frozen=True)
class IdentityFiles:
    """Where a data directory keeps its keys and certificates."""

    data_dir: Path

    @property
    def node_key(self) -> Path:
        return self.data_dir / "node.key"

    @property
    def node_cert(self) -> Path:
        return self.data_dir / "node.crt"

    @property
    def ca_key(self) -> Path:
        return self.data_dir / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.data_dir / "ca.crt"

    def write_new(self, node_key: nacl.signing.SigningKey, ca: ClusterCA) -> None:
        pem = serialization.Encoding.PEM
        self.write(node_key, ca, ca.issue(node_key.verify_key).public_bytes(pem).decode())

    def write(self, node_key: nacl.signing.SigningKey, ca: ClusterCA, cert_pem: str) -> None:
        seed = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(node_key))
        write_private(self.node_key, _pem_private(seed))
        write_private(self.ca_key, _pem_private(ca.key))
        self.ca_cert.write_text(ca.cert_pem())
        self.node_cert.write_text(cert_pem)
