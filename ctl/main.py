"""peer53ctl: the operator's command line. It speaks to one node over the HTTP API only.

Global flags come before the subcommand; ``--json`` is also accepted after it. Without
flags the node's address and token come from PEER53_API and PEER53_TOKEN. Tables go to
stdout, progress to stderr, and every failure is one line on stderr with a non-zero exit.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import httpx

from ctl.client import ZONE_FILE, ApiError, CtlError, NodeClient, json_body, path_segment
from ctl.render import (
    UnexpectedResponse,
    field,
    items,
    render_import,
    render_invites,
    render_members,
    render_rrsets,
    render_status,
    render_tokens,
    render_zone,
    render_zones,
    upload_progress,
)
from protocol.duration import parse_duration

PROG = "peer53ctl"
DEFAULT_API = "http://127.0.0.1:8053"
MAX_TTL = 2**31 - 1
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
CLEAR_TO_END = "\x1b[K"
OWNER_HELP = "relative to ZONE unless it ends in '.'; '@' is the apex"


class UsageError(CtlError):
    """The command line itself is wrong (exit status 2)."""


@dataclass(frozen=True)
class Console:
    out: TextIO
    err: TextIO

    def progress(self, line: str, *, final: bool) -> None:
        """On a terminal one line is rewritten in place; elsewhere each update is a line."""
        if self.err.isatty():
            self.err.write(f"\r{line}{CLEAR_TO_END}" + ("\n" if final else ""))
        else:
            self.err.write(f"{line}\n")
        self.err.flush()

    def error(self, message: str) -> None:
        """One line; on a terminal it first clears an unfinished progress line."""
        start = f"\r{CLEAR_TO_END}" if self.err.isatty() else ""
        self.err.write(f"{start}{PROG}: error: {message}\n")


Handler = Callable[[NodeClient, argparse.Namespace, Console], None]


@dataclass(frozen=True)
class Settings:
    api: str
    token: str | None


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are reported like every other error: one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _duration(text: str) -> int:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    if seconds == 0:
        raise argparse.ArgumentTypeError("the duration must be longer than 0 seconds")
    return seconds


def _absolute_name(text: str) -> dns.name.Name:
    """Zone and host names on the command line are absolute with or without the final dot."""
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException as error:
        raise argparse.ArgumentTypeError(f"invalid name {text!r}: {error}") from error


def _rdtype(text: str) -> dns.rdatatype.RdataType:
    try:
        return dns.rdatatype.from_text(text)
    except dns.exception.DNSException as error:
        raise argparse.ArgumentTypeError(f"unknown record type {text!r}") from error


def _ttl(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > MAX_TTL:
        raise argparse.ArgumentTypeError(f"invalid TTL {text!r}: expected 0 to {MAX_TTL} seconds")
    return int(text)


def owner_name(text: str, zone: dns.name.Name) -> dns.name.Name:
    """NAME in ``rrset`` commands: relative to the zone unless it ends in '.', '@' the apex."""
    try:
        name = dns.name.from_text(text, origin=zone)
    except dns.exception.DNSException as error:
        raise UsageError(f"invalid name {text!r}: {error}") from error
    if not name.is_subdomain(zone):
        raise UsageError(f"{name} is not in zone {zone}")
    return name


def rdata_text(text: str, rdtype: dns.rdatatype.RdataType, zone: dns.name.Name) -> str:
    """One RDATA argument checked by dnspython, with relative names made absolute in ZONE."""
    try:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=zone, relativize=False)
    except dns.exception.DNSException as error:
        kind = dns.rdatatype.to_text(rdtype)
        raise UsageError(f"invalid {kind} rdata {text!r}: {error}") from error
    return rdata.to_text()


def _zone_path(zone: dns.name.Name) -> str:
    return f"/api/v1/zones/{path_segment(zone.to_text())}"


def _rrset_path(zone: dns.name.Name, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> str:
    return (
        f"{_zone_path(zone)}/rrsets/{path_segment(name.to_text())}/"
        f"{path_segment(dns.rdatatype.to_text(rdtype))}"
    )


def _emit(
    console: Console,
    args: argparse.Namespace,
    response: httpx.Response,
    render: Callable[[Any], str],
) -> None:
    """``--json`` prints the body exactly as the node sent it; otherwise a rendered view."""
    if args.json:
        console.out.write(response.text)
    else:
        console.out.write(render(json_body(response)))


def cmd_invite_create(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    response = client.request("POST", "/api/v1/invites", json={"ttl": args.ttl})
    _emit(console, args, response, lambda body: f"{field(body, 'token')}\n")


def cmd_invite_list(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    _emit(console, args, client.request("GET", "/api/v1/invites"), render_invites)


def cmd_invite_revoke(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    response = client.request("DELETE", f"/api/v1/invites/{path_segment(args.jti)}")
    console.out.write(response.text if args.json else f"revoked invite {args.jti}\n")


def cmd_token_create(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    body: dict[str, Any] = {"name": args.name, "role": args.role}
    if args.zone:
        body["zones"] = [zone.to_text() for zone in args.zone]
    response = client.request("POST", "/api/v1/tokens", json=body)
    _emit(console, args, response, lambda doc: f"{field(doc, 'token')}\n")


def cmd_token_list(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    _emit(console, args, client.request("GET", "/api/v1/tokens"), render_tokens)


def cmd_token_revoke(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    path = f"/api/v1/tokens/{path_segment(args.id)}"
    response = client.request("DELETE", path + ("?force=true" if args.force else ""))
    console.out.write(response.text if args.json else f"revoked token {args.id}\n")


def cmd_member_list(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    _emit(console, args, client.request("GET", "/api/v1/members"), render_members)


def cmd_member_remove(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    path = f"/api/v1/members/{path_segment(args.id)}"
    response = client.request("DELETE", path + ("?force=true" if args.force else ""))
    _emit(
        console,
        args,
        response,
        lambda doc: (
            f"removed member {field(doc, 'id')} ({doc.get('name', '')}); "
            f"its events up to {field(doc, 'cut')} count\n"
        ),
    )


def cmd_status(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    _emit(console, args, client.request("GET", "/api/v1/cluster"), render_status)


def cmd_zone_list(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    _emit(console, args, client.request("GET", "/api/v1/zones"), render_zones)


def cmd_zone_create(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    body: dict[str, Any] = {"name": args.zone.to_text()}
    if args.ns:
        body["ns"] = [host.to_text() for host in args.ns]
    _emit(console, args, client.request("POST", "/api/v1/zones", json=body), render_zone)


def cmd_zone_delete(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    response = client.request("DELETE", _zone_path(args.zone))
    console.out.write(response.text if args.json else f"deleted zone {args.zone}\n")


class RecordLineCounter:
    """Counts the records in a zone file as it streams past, for the progress message.

    A full dnspython parse of a million-record file takes minutes, longer than the upload,
    so this only finds where records start: non-blank lines that are not comments or
    $-directives, joining the lines of a parenthesised record. The node parses the file
    for real and its answer reports the exact counts.
    """

    def __init__(self) -> None:
        self.records = 0
        self._depth = 0
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            self._line(line)

    def finish(self) -> int:
        self._line(self._partial)
        self._partial = b""
        return self.records

    def _line(self, line: bytes) -> None:
        content = line.strip()
        if self._depth == 0 and content.upper().startswith(b"$GENERATE"):
            self.records += _generate_count(content)
        starts_record = self._depth == 0 and content != b"" and not content.startswith((b";", b"$"))
        self.records += starts_record
        if b"(" in line or b")" in line:
            self._depth = max(0, self._depth + _paren_balance(line))


_GENERATE_RANGE = re.compile(rb"\$GENERATE\s+(\d+)-(\d+)(?:/(\d+))?\s", re.IGNORECASE)


def _generate_count(line: bytes) -> int:
    """How many records a $GENERATE line makes (BIND's start-stop[/step] range)."""
    match = _GENERATE_RANGE.match(line + b" ")
    if match is None:
        return 0
    start, stop = int(match.group(1)), int(match.group(2))
    step = int(match.group(3) or 1)
    return 0 if stop < start or step == 0 else (stop - start) // step + 1


def _paren_balance(line: bytes) -> int:
    """'(' minus ')' outside quoted strings, escapes and comments."""
    balance = 0
    quoted = escaped = False
    for char in line.decode("latin-1"):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char == ";":
            break
        elif char == "(":
            balance += 1
        elif char == ")":
            balance -= 1
    return balance


class ImportProgress:
    """Reports upload progress by bytes, then how many records the node is importing."""

    def __init__(self, console: Console, file: Path) -> None:
        self._console = console
        self._file = file
        self._total = file.stat().st_size
        self._sent = 0
        self._shown = -1
        self._counter = RecordLineCounter()
        self._waiting = ""
        self._answered = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def chunk_sent(self, chunk: bytes) -> None:
        self._sent += len(chunk)
        self._counter.feed(chunk)
        done = self._sent == self._total
        percent = self._sent * 100 // max(self._total, 1)
        step = percent if self._console.err.isatty() else percent // 10 * 10
        if step != self._shown or done:
            self._shown = step
            line = upload_progress(self._file.name, self._sent, self._total)
            self._console.progress(line, final=done)
        if done:
            records = self._counter.finish()
            noun = "record" if records == 1 else "records"
            self._waiting = f"importing {records} {noun}..."
            self._console.progress(self._waiting, final=False)
            self._ticker.start()

    def __enter__(self) -> ImportProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        """Stop the ticker once the node has answered (or the request failed)."""
        self._answered.set()
        if self._ticker.is_alive():
            self._ticker.join()
            outcome = "done" if kind is None else "failed"
            self._console.progress(f"{self._waiting} {outcome}", final=True)

    def _tick(self) -> None:
        """While the node works, show that it does: elapsed seconds, never silence."""
        started = time.monotonic()
        interval = 1.0 if self._console.err.isatty() else 10.0
        while not self._answered.wait(interval):
            elapsed = time.monotonic() - started
            self._console.progress(f"{self._waiting} {elapsed:.0f}s", final=False)


def cmd_zone_import(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    file: Path = args.file
    try:
        with ImportProgress(console, file) as progress:
            response = client.upload(
                _zone_path(args.zone),
                file,
                content_type=ZONE_FILE,
                on_sent=progress.chunk_sent,
            )
    except OSError as error:
        raise CtlError(f"cannot read {file}: {error.strerror or error}") from error
    _emit(console, args, response, render_import)


def cmd_zone_export(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    zone_file = client.request("GET", _zone_path(args.zone), accept=ZONE_FILE).text
    console.out.write(zone_file if zone_file.endswith("\n") or not zone_file else f"{zone_file}\n")


def cmd_rrset_list(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    params = {}
    if args.name is not None:
        params["name"] = owner_name(args.name, args.zone).to_text()
    if args.type is not None:
        params["type"] = dns.rdatatype.to_text(args.type)
    response = client.request("GET", f"{_zone_path(args.zone)}/rrsets", params=params)
    _emit(console, args, response, lambda body: render_rrsets(items(body, "rrsets")))


def cmd_rrset_set(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    name = owner_name(args.name, args.zone)
    records = [rdata_text(text, args.type, args.zone) for text in args.rdata]
    response = client.request(
        "PUT",
        _rrset_path(args.zone, name, args.type),
        json={"ttl": args.ttl, "records": records},
    )
    _emit(console, args, response, lambda body: render_rrsets([body]))


def cmd_rrset_delete(client: NodeClient, args: argparse.Namespace, console: Console) -> None:
    name = owner_name(args.name, args.zone)
    response = client.request("DELETE", _rrset_path(args.zone, name, args.type))
    kind = dns.rdatatype.to_text(args.type)
    deleted = f"deleted {name} {kind} from zone {args.zone}\n"
    console.out.write(response.text if args.json else deleted)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Operate a peer53 cluster through a node's API.")
    parser.add_argument("--api", metavar="URL", help=f"node API URL (PEER53_API, {DEFAULT_API})")
    tokens = parser.add_mutually_exclusive_group()
    tokens.add_argument("--token", help="API token (PEER53_TOKEN)")
    tokens.add_argument("--token-file", metavar="PATH", type=Path, help="read the token from PATH")
    parser.add_argument("--json", action="store_true", help="print API bodies as JSON")
    json_flag = _Parser(add_help=False)
    json_flag.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the API body"
    )
    commands = parser.add_subparsers(metavar="COMMAND", required=True)

    def command(
        parent: argparse._SubParsersAction[_Parser], name: str, handler: Handler, text: str
    ) -> _Parser:
        sub = parent.add_parser(name, parents=[json_flag], help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    def group(name: str, text: str) -> argparse._SubParsersAction[_Parser]:
        sub = commands.add_parser(name, help=text, description=text)
        return sub.add_subparsers(metavar="ACTION", required=True)

    invite = group("invite", "invitations for new nodes")
    mint = command(invite, "create", cmd_invite_create, "mint a one-time join token")
    mint.add_argument(
        "--ttl", type=_duration, default=3600, metavar="DURATION", help="lifetime (default 1h)"
    )

    token = group("token", "API tokens")
    made = command(
        token, "create", cmd_token_create, "create an API token and print its secret (once)"
    )
    made.add_argument("--role", required=True, choices=("admin", "editor", "reader"))
    made.add_argument("--name", required=True, help="what the token is for, to tell it apart")
    made.add_argument(
        "--zone",
        metavar="ZONE",
        type=_absolute_name,
        action="append",
        help="editor tokens: limit to this zone (repeat for more)",
    )
    command(token, "list", cmd_token_list, "list API tokens (never their secrets)")
    revoked = command(token, "revoke", cmd_token_revoke, "revoke an API token for ever")
    revoked.add_argument("id", metavar="ID", help="the token id (the part after 'p53.')")
    revoked.add_argument("--force", action="store_true", help="allow revoking the last admin token")

    command(invite, "list", cmd_invite_list, "list invites: open, expired, used (by whom), revoked")
    withdrawn = command(invite, "revoke", cmd_invite_revoke, "revoke an open invite for ever")
    withdrawn.add_argument("jti", metavar="JTI", help="the invite's id (from invite list)")

    command(commands, "status", cmd_status, "cluster members, links and replication lag")

    member = group("member", "cluster members")
    command(member, "list", cmd_member_list, "list members, also those that left or were removed")
    removal = command(
        member, "remove", cmd_member_remove, "remove a member from the cluster, for ever"
    )
    removal.add_argument("id", metavar="ID", help="the member's node id (64 hex digits)")
    removal.add_argument(
        "--force", action="store_true", help="allow removing the node this command talks to"
    )

    zone = group("zone", "zones")
    command(zone, "list", cmd_zone_list, "list zones")
    create = command(zone, "create", cmd_zone_create, "create an empty zone")
    create.add_argument("zone", metavar="NAME", type=_absolute_name)
    create.add_argument(
        "--ns", metavar="HOST", type=_absolute_name, action="append", help="apex NS host"
    )
    delete = command(zone, "delete", cmd_zone_delete, "delete a zone and all its records")
    delete.add_argument("zone", metavar="NAME", type=_absolute_name)
    load = command(zone, "import", cmd_zone_import, "replace a zone's data with a zone file")
    load.add_argument("zone", metavar="NAME", type=_absolute_name)
    load.add_argument("file", metavar="FILE", type=Path)
    export = command(zone, "export", cmd_zone_export, "print a zone as a zone file")
    export.add_argument("zone", metavar="NAME", type=_absolute_name)

    rrset = group("rrset", "record sets")
    listing = command(rrset, "list", cmd_rrset_list, "list a zone's RRsets")
    listing.add_argument("zone", metavar="ZONE", type=_absolute_name)
    listing.add_argument("--name", metavar="N", help=f"only this owner; {OWNER_HELP}")
    listing.add_argument("--type", metavar="T", type=_rdtype, help="only this type")
    replace = command(rrset, "set", cmd_rrset_set, "create or replace an RRset")
    replace.add_argument("zone", metavar="ZONE", type=_absolute_name)
    replace.add_argument("name", metavar="NAME", help=OWNER_HELP)
    replace.add_argument("type", metavar="TYPE", type=_rdtype, help="record type, e.g. A, MX")
    replace.add_argument("ttl", metavar="TTL", type=_ttl, help="seconds")
    replace.add_argument(
        "rdata", metavar="RDATA", nargs="+", help="one whole rdata per argument, e.g. '10 mail'"
    )
    remove = command(rrset, "delete", cmd_rrset_delete, "delete an RRset")
    remove.add_argument("zone", metavar="ZONE", type=_absolute_name)
    remove.add_argument("name", metavar="NAME", help=OWNER_HELP)
    remove.add_argument("type", metavar="TYPE", type=_rdtype)
    return parser


def _read_token_file(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read token file {path}: {error}") from error
    if not token:
        raise UsageError(f"token file {path} is empty")
    return token


def resolve_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Flags win over PEER53_API and PEER53_TOKEN; an empty variable counts as unset."""
    api = args.api or environ.get("PEER53_API") or DEFAULT_API
    try:
        url = httpx.URL(api)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise UsageError(f"invalid API URL {api!r}: expected http://HOST:PORT")
    if args.token_file is not None:
        token: str | None = _read_token_file(args.token_file)
    else:
        token = args.token or environ.get("PEER53_TOKEN") or None
    if token is not None and (not token.isprintable() or " " in token):
        raise UsageError("the API token must be one word of printable characters")
    return Settings(api=api, token=token)


def _message(error: CtlError | UnexpectedResponse, client: NodeClient | None) -> str:
    message = str(error)
    if isinstance(error, ApiError) and error.status == 401 and client and not client.has_token:
        message += " (no API token given: use --token, --token-file or PEER53_TOKEN)"
    return message


def run(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str],
    stdout: TextIO,
    stderr: TextIO,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """The whole command; returns the exit status. ``transport`` lets tests stand in for
    the node."""
    console = Console(stdout, stderr)
    client = None
    try:
        args = build_parser().parse_args(argv)
        settings = resolve_settings(args, environ)
        with NodeClient(settings.api, settings.token, transport=transport) as client:
            handler: Handler = args.handler
            handler(client, args, console)
    except UsageError as error:
        console.error(_message(error, None))
        return EXIT_USAGE
    except (CtlError, UnexpectedResponse) as error:
        console.error(_message(error, client))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        console.error("interrupted")
        return EXIT_INTERRUPTED
    return 0


def main() -> None:
    try:
        status = run(sys.argv[1:], environ=os.environ, stdout=sys.stdout, stderr=sys.stderr)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`peer53ctl zone export big | head`): say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = EXIT_FAILURE
    raise SystemExit(status)
