"""The node's configuration file, DIR/peer53.toml: parsing and validation.

Every setting has a default; unknown sections or keys are errors, because a misspelt
setting that is silently ignored is worse than a node that refuses to start.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

from node import __version__
from protocol.events import NODE_ID_RE

CONFIG_FILE = "peer53.toml"
LISTEN_FILE = "listen.json"  # the addresses a running node really bound


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, what: str = "address") -> Address:
    """``H:P``, with IPv6 hosts in brackets (``[::1]:53``)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{what} {text!r}: expected HOST:PORT")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"{what} {text!r}: {host!r} is not an IP address") from None
    if (":" in host) != bracketed:
        raise ConfigError(f"{what} {text!r}: an IPv6 address goes in brackets, IPv4 not")
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{what} {text!r}: port must be 0-65535")
    return Address(host, int(port_text))


@dataclass(frozen=True)
class ListenConfig:
    dns: str = "127.0.0.1:5353"
    api: str = "127.0.0.1:8053"
    peer: str = "127.0.0.1:7053"
    advertise: str = ""  # the peer address other nodes dial; "" means the peer address


@dataclass(frozen=True)
class DnsConfig:
    """An empty string hides a CHAOS identity answer (the query gets REFUSED)."""

    udp_payload: int = 1232
    tcp_idle_timeout: int = 10
    tcp_max_connections: int = 256
    cache_entries: int = 50_000  # rendered responses kept; about 2 KB each
    nsid: str = ""
    id_server: str | None = None  # None: the node name
    hostname_bind: str | None = None  # None: the node name
    version_bind: str = f"peer53 {__version__}"


@dataclass(frozen=True)
class ApiConfig:
    metrics_auth: bool = False  # True: /metrics needs a token (any role)


@dataclass(frozen=True)
class PeeringConfig:
    """Peer-link timers, in milliseconds."""

    heartbeat_ms: int = 1000  # a PING this often on an idle link
    dead_after_ms: int = 5000  # a link silent this long is closed and redialled
    backoff_min_ms: int = 100  # first redial delay; doubles per failure, with jitter
    backoff_max_ms: int = 5000  # the redial delay's cap
    connect_timeout_ms: int = 5000  # TCP connect plus TLS handshake plus HELLO
    write_hold_ms: int = 5000  # at start, local writes wait this long for a peer's HELLO
    repair_interval_ms: int = 30000  # Merkle roots are compared this often per pair
    compact_interval_ms: int = 60000  # log truncation and tombstone purging run this often
    # A member unheard of this long no longer holds back compaction; it resyncs from a
    # snapshot when it returns.
    stale_after_ms: int = 7 * 24 * 3600 * 1000


# Upper bounds of the peering timers; the rest may be up to 10 minutes.
_LONG_TIMERS = {"stale_after_ms": 366 * 24 * 3600 * 1000}


@dataclass(frozen=True)
class NodeConfig:
    name: str
    listen: ListenConfig = field(default_factory=ListenConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    peering: PeeringConfig = field(default_factory=PeeringConfig)
    # Where to dial a member instead of its published address: for NAT, or a test proxy.
    dial_overrides: dict[str, str] = field(default_factory=dict)

    def advertised_peer(self, bound_port: int | None = None) -> str:
        """The peer address other nodes are told to dial (members list, invites); with
        ``bound_port``, the port the listener really got (port 0 picks one)."""
        if self.listen.advertise:
            return self.listen.advertise
        peer = parse_address(self.listen.peer, "listen.peer")
        if ipaddress.ip_address(peer.host).is_unspecified:
            raise ConfigError(
                f"the peer listener is on the wildcard address {peer}: give --advertise H:P "
                "(or [listen] advertise), the address other nodes can reach this node at"
            )
        return str(Address(peer.host, peer.port if bound_port is None else bound_port))

    def addresses(self) -> dict[str, Address]:
        return {
            "dns": parse_address(self.listen.dns, "listen.dns"),
            "api": parse_address(self.listen.api, "listen.api"),
            "peer": parse_address(self.listen.peer, "listen.peer"),
        }

    def with_listen(self, **overrides: str | None) -> NodeConfig:
        given = {k: v for k, v in overrides.items() if v is not None}
        for key, value in given.items():
            parse_address(value, f"--{key}")
        if "advertise" in given:
            validate(replace(self, listen=replace(self.listen, **given)))
        return replace(self, listen=replace(self.listen, **given))


def _section(cls: type[Any], doc: Any, where: str) -> Any:
    if not isinstance(doc, dict):
        raise ConfigError(f"[{where}] must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(doc) - set(known))
    if unknown:
        raise ConfigError(f"[{where}]: unknown setting {unknown[0]!r}")
    for key, value in doc.items():
        expected = str(known[key].type)
        if expected == "bool":
            ok = isinstance(value, bool)
        elif expected == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ConfigError(f"[{where}] {key}: expected {expected}")
    return cls(**doc)


def _dial_overrides(doc: Any) -> dict[str, str]:
    if not isinstance(doc, dict):
        raise ConfigError("[dial_overrides] must be a table")
    for node_id, address in doc.items():
        if not NODE_ID_RE.fullmatch(node_id):
            raise ConfigError(f"[dial_overrides] {node_id!r} is not a node id (64 hex digits)")
        if not isinstance(address, str):
            raise ConfigError(f'[dial_overrides] {node_id[:12]}: expected "HOST:PORT"')
        parse_address(address, f"[dial_overrides] {node_id[:12]}")
    return dict(doc)


def validate(config: NodeConfig) -> NodeConfig:
    config.addresses()
    if config.listen.advertise:
        advertised = parse_address(config.listen.advertise, "listen.advertise")
        if advertised.port == 0 or ipaddress.ip_address(advertised.host).is_unspecified:
            raise ConfigError("listen.advertise must be a reachable address and port, not 0")
    if not 512 <= config.dns.udp_payload <= 4096:
        raise ConfigError("[dns] udp_payload must be 512-4096")
    if not 1 <= config.dns.tcp_idle_timeout <= 3600:
        raise ConfigError("[dns] tcp_idle_timeout must be 1-3600 seconds")
    if not 1 <= config.dns.tcp_max_connections <= 65535:
        raise ConfigError("[dns] tcp_max_connections must be 1-65535")
    if not 1 <= config.dns.cache_entries <= 10_000_000:
        raise ConfigError("[dns] cache_entries must be 1-10000000")
    if len(config.dns.nsid.encode()) > 128:
        raise ConfigError("[dns] nsid must be at most 128 bytes")
    for timer in fields(PeeringConfig):
        top = _LONG_TIMERS.get(timer.name, 600_000)
        if not 10 <= getattr(config.peering, timer.name) <= top:
            raise ConfigError(f"[peering] {timer.name} must be 10-{top} milliseconds")
    if config.peering.dead_after_ms <= config.peering.heartbeat_ms:
        raise ConfigError("[peering] dead_after_ms must be longer than heartbeat_ms")
    if config.peering.stale_after_ms <= 2 * config.peering.dead_after_ms:
        raise ConfigError("[peering] stale_after_ms must be longer than twice dead_after_ms")
    if config.peering.backoff_max_ms < config.peering.backoff_min_ms:
        raise ConfigError("[peering] backoff_max_ms must be at least backoff_min_ms")
    return config


def load_config(data_dir: Path) -> NodeConfig:
    path = data_dir / CONFIG_FILE
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path} not found: run 'peer53 init --data-dir {data_dir}' first"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = sorted(set(doc) - {"node", "listen", "dns", "api", "peering", "dial_overrides"})
    if unknown:
        raise ConfigError(f"{path}: unknown section [{unknown[0]}]")
    node = doc.get("node", {})
    if not isinstance(node, dict) or set(node) != {"name"} or not isinstance(node["name"], str):
        raise ConfigError(f'{path}: [node] must hold exactly name = "..."')
    try:
        return validate(
            NodeConfig(
                name=node["name"],
                listen=_section(ListenConfig, doc.get("listen", {}), "listen"),
                dns=_section(DnsConfig, doc.get("dns", {}), "dns"),
                api=_section(ApiConfig, doc.get("api", {}), "api"),
                peering=_section(PeeringConfig, doc.get("peering", {}), "peering"),
                dial_overrides=_dial_overrides(doc.get("dial_overrides", {})),
            )
        )
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def write_config(data_dir: Path, config: NodeConfig) -> None:
    doc = {
        "node": {"name": config.name},
        "listen": {"dns": config.listen.dns, "api": config.listen.api, "peer": config.listen.peer},
    }
    if config.listen.advertise:
        doc["listen"]["advertise"] = config.listen.advertise
    (data_dir / CONFIG_FILE).write_text(tomli_w.dumps(doc))
