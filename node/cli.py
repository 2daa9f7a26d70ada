"""``peer53``: initialise a node's data directory and run the node."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

from node.bootstrap import AlreadyInitialised, initialise
from node.config import ConfigError, ListenConfig, NodeConfig, load_config
from node.join import JoinError, join_cluster
from node.leave import LeaveError, leave_cluster
from node.service import DataDirError, NodeState
from protocol.invites import InviteError

log = logging.getLogger("peer53")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peer53", description="peer53: authoritative DNS as a peer-to-peer cluster"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def listen_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", required=True, type=Path, help="the node's directory")
        p.add_argument("--dns", metavar="H:P", help="DNS listen address (UDP and TCP)")
        p.add_argument("--api", metavar="H:P", help="HTTP API listen address")
        p.add_argument("--peer", metavar="H:P", help="peer link listen address")
        p.add_argument(
            "--advertise",
            metavar="H:P",
            help="peer address other nodes dial (needed when --peer is a wildcard address)",
        )

    init = sub.add_parser("init", help="create a new cluster with this node as first member")
    listen_flags(init)
    init.add_argument("--name", help="node name (default: the host name)")
    init.add_argument("--cluster-name", default="peer53", help="cluster name")
    join = sub.add_parser("join", help="become a member of a cluster with a one-time invite")
    join.add_argument("token", metavar="TOKEN", help="the invite ('peer53ctl invite create')")
    listen_flags(join)
    join.add_argument("--name", help="node name (default: the host name)")
    leave = sub.add_parser(
        "leave", help="make the running node leave its cluster for ever (then stop it)"
    )
    leave.add_argument("--data-dir", type=Path, required=True, help="the node's data directory")
    leave.add_argument("--token", help="admin API token (default: PEER53_TOKEN, admin.token)")
    leave.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the others (default 30)"
    )
    run = sub.add_parser("run", help="serve DNS and the API")
    listen_flags(run)
    return parser


def _new_config(args: argparse.Namespace) -> NodeConfig:
    defaults = ListenConfig()
    return NodeConfig(
        name=args.name or socket.gethostname(),
        listen=ListenConfig(
            dns=args.dns or defaults.dns,
            api=args.api or defaults.api,
            peer=args.peer or defaults.peer,
            advertise=args.advertise or "",
        ),
    )


def _init(args: argparse.Namespace) -> int:
    config = _new_config(args)
    token = initialise(args.data_dir, config, args.cluster_name)
    print(f"initialised node {config.name!r} in {args.data_dir}", file=sys.stderr)
    print(f"admin API token written to {args.data_dir / 'admin.token'}", file=sys.stderr)
    print(f"start it with: peer53 run --data-dir {args.data_dir}", file=sys.stderr)
    print(token)
    return 0


def _join(args: argparse.Namespace) -> int:
    config = _new_config(args)
    print("joining: checking the issuer against the invite's CA pin...", file=sys.stderr)
    joined = join_cluster(args.token, args.data_dir, config)
    print(
        f"joined cluster {joined.cluster_name!r} ({joined.cluster_id}) as {config.name!r}, "
        f"node id {joined.node_id}; {joined.members} members, {joined.keys} state keys copied",
        file=sys.stderr,
    )
    print(f"start it with: peer53 run --data-dir {args.data_dir}", file=sys.stderr)
    return 0


def _leave(args: argparse.Namespace) -> int:
    left = leave_cluster(args.data_dir, args.token, args.timeout)
    print(
        f"{left.name or 'this node'} has left the cluster; {left.acknowledged} of "
        f"{left.others} other members applied it",
        file=sys.stderr,
    )
    if left.acknowledged < left.others:
        print(
            "the rest will learn it from any member that has; keep the node running a "
            "little longer if none has",
            file=sys.stderr,
        )
    print("stop the node now: it takes no writes, and its data directory can never rejoin")
    return 0


def _run(args: argparse.Namespace) -> int:
    # Imported here: the HTTP stack takes most of a second to load, and init does not need it.
    import trio

    from node.runtime import first_leaf, run_node

    config = load_config(args.data_dir).with_listen(
        dns=args.dns, api=args.api, peer=args.peer, advertise=args.advertise
    )
    config.advertised_peer()  # a wildcard peer address needs --advertise: say so before binding
    state = NodeState.open(args.data_dir, config)
    try:
        trio.run(run_node, state)
    except BaseExceptionGroup as group:
        error = first_leaf(group, OSError)
        if error is None:
            raise
        raise error from None
    return 0


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handlers = {"init": _init, "join": _join, "leave": _leave, "run": _run}
    try:
        sys.exit(handlers[args.command](args))
    except (
        ConfigError,
        DataDirError,
        AlreadyInitialised,
        OSError,
        InviteError,
        JoinError,
        LeaveError,
    ) as exc:
        print(f"peer53: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C while loading, before the node handles signals
        print("peer53: interrupted", file=sys.stderr)
        sys.exit(130)
