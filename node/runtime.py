"""``peer53 run``: one trio process serving DNS and the API until SIGINT or SIGTERM.

Shutdown order: stop taking DNS queries, let hypercorn finish in-flight requests (so an
accepted write is committed and answered), then close SQLite.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
from functools import partial
from pathlib import Path

import trio

from node import heap
from node.api.app import create_app
from node.api.http_server import serve_http
from node.api.metrics import MetricsSources
from node.config import LISTEN_FILE, Address, NodeConfig
from node.dns.cache import AnswerCache
from node.dns.query import AnswerConfig, ServerIdentity
from node.dns.server import ListenerStats, TcpServer, bind_udp, serve_udp
from node.replication.peering import Peering
from node.service import NodeState, WritesHeld
from protocol.canonical import JSONValue
from protocol.statekeys import member_key

log = logging.getLogger("peer53")


class ListenError(OSError):
    """A listener could not bind; the message names the address."""


def first_leaf(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` in a (possibly nested) exception group."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_leaf(inner, kind)
            if found is not None:
                return found
        return None
    return exc if isinstance(exc, kind) else None


DNS_BIND_ATTEMPTS = 20


def answer_config(node: NodeConfig) -> AnswerConfig:
    dns = node.dns
    name = node.name
    return AnswerConfig(
        udp_payload=dns.udp_payload,
        nsid=dns.nsid.encode() or None,
        identity=ServerIdentity(
            id_server=(name if dns.id_server is None else dns.id_server) or None,
            hostname_bind=(name if dns.hostname_bind is None else dns.hostname_bind) or None,
            version_bind=dns.version_bind or None,
        ),
    )


async def bind_dns(address: Address) -> tuple[socket.socket, list[trio.SocketListener], int]:
    """UDP and TCP on one port; with port 0, retry until both get the same free port."""
    for _ in range(DNS_BIND_ATTEMPTS):
        try:
            udp = bind_udp(address)
        except OSError as exc:
            raise ListenError(f"cannot listen for DNS on {address}: {exc.strerror}") from None
        port = int(udp.getsockname()[1])
        try:
            listeners = await trio.open_tcp_listeners(port, host=address.host)
        except OSError as exc:
            udp.close()
            if address.port != 0:
                raise ListenError(f"cannot listen for DNS on {address}: {exc.strerror}") from None
            continue
        return udp, listeners, port
    raise OSError(f"could not bind UDP and TCP to one free port on {address.host}")


def write_listen_file(data_dir: Path, bound: dict[str, str]) -> None:
    path = data_dir / LISTEN_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(bound, indent=2) + "\n")
    os.replace(tmp, path)


async def _watch_signals(stop: trio.Event) -> None:
    """The first SIGINT/SIGTERM starts a clean shutdown; later ones must not cut it short."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if stop.is_set():
                log.info("received %s, already shutting down", name)
            else:
                log.info("received %s, shutting down", name)
                stop.set()


async def bind_peer(address: Address) -> list[trio.SocketListener]:
    try:
        return await trio.open_tcp_listeners(address.port, host=address.host)
    except OSError as exc:
        raise ListenError(f"cannot listen for peers on {address}: {exc.strerror}") from None


async def publish_peer_address(state: NodeState, advertised: str) -> None:
    """Members dial the address in this node's member register; keep it current (a port
    0 listener gets a new port on every start)."""
    key = member_key(state.identity.node_id)

    def current() -> dict[str, JSONValue] | None:
        value = state.replica.registers.value(key)
        return value if isinstance(value, dict) else None

    def addressed() -> dict[str, JSONValue]:
        return {key: {**(current() or {}), "peer": advertised}}

    while state.replica.is_member(state.identity.node_id):
        value = current()
        if value is None or value.get("peer") == advertised:
            return
        try:
            await state.write("member.address", addressed)
            log.info("published peer address %s", advertised)
        except WritesHeld as exc:
            log.warning("cannot publish this node's peer address yet: %s", exc)


async def _serve(state: NodeState, stop: trio.Event) -> None:
    addresses = state.config.addresses()
    config = answer_config(state.config)
    cache = AnswerCache(state.replica.zones, config, max_entries=state.config.dns.cache_entries)
    responder = cache.respond
    stats = ListenerStats()
    udp, tcp_listeners, dns_port = await bind_dns(addresses["dns"])
    tcp = TcpServer(
        responder, state.config.dns.tcp_idle_timeout, state.config.dns.tcp_max_connections, stats
    )
    peer_listeners = await bind_peer(addresses["peer"])
    peer_port = int(peer_listeners[0].socket.getsockname()[1])
    peer_bound = Address(addresses["peer"].host, peer_port)
    advertised = state.config.advertised_peer(peer_port)
    state.peer_address = advertised
    peering = Peering(state)
    heap.start_serving()
    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as dns_nursery:
            dns_nursery.start_soon(serve_udp, udp, responder, stats)
            dns_nursery.start_soon(trio.serve_listeners, tcp.handle, tcp_listeners)
            await dns_nursery.start(peering.run, peer_listeners)
            dns_nursery.start_soon(publish_peer_address, state, advertised)
            dns_nursery.start_soon(state.checkpoints)
            api = addresses["api"]
            try:
                api_host, api_port = await nursery.start(
                    partial(
                        serve_http,
                        create_app(state, MetricsSources(state, stats, cache, peering), peering),
                        api.host,
                        api.port,
                        shutdown=stop,
                    )
                )
            except BaseExceptionGroup as group:
                error = first_leaf(group, OSError)
                if not isinstance(error, OSError):
                    raise
                raise ListenError(f"cannot listen for the API on {api}: {error.strerror}") from None
            bound = {
                "dns": str(Address(addresses["dns"].host, dns_port)),
                "api": str(Address(api_host, api_port)),
                "peer": str(peer_bound),
            }
            write_listen_file(state.data_dir, bound)
            log.info(
                "serving DNS on %s, API on http://%s, peers on %s",
                bound["dns"],
                bound["api"],
                bound["peer"],
            )
            await stop.wait()
            dns_nursery.cancel_scope.cancel()
        udp.close()
    # The API nursery has drained: every accepted write is committed and answered.


async def run_node(state: NodeState) -> None:
    stop = trio.Event()
    # Signals that arrive after the receiver below closes are re-delivered to the handler
    # it restores; making that handler "ignore" keeps a late second Ctrl-C from killing
    # the process while it closes SQLite.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    try:
        async with trio.open_nursery() as signals:
            signals.start_soon(_watch_signals, stop)
            try:
                await _serve(state, stop)
            finally:
                signals.cancel_scope.cancel()
    finally:
        (state.data_dir / LISTEN_FILE).unlink(missing_ok=True)
        state.close()
    log.info("stopped")
