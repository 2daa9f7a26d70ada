"""peer53ctl without a node: argument parsing, rendering, and whole commands run against
an in-memory stand-in for the API (httpx.MockTransport)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.name
import dns.rdatatype
import dns.zone
import httpx
import pytest

from ctl.client import path_segment
from ctl.main import RecordLineCounter, UsageError, build_parser, owner_name, rdata_text, run
from ctl.render import (
    UnexpectedResponse,
    format_bytes,
    format_table,
    render_import,
    render_members,
    render_rrsets,
    render_status,
    render_zones,
    upload_progress,
)

DATA = Path(__file__).parent / "data"
ZONE = dns.name.from_text("example.com.")
NODE_A = "a1" * 32
NODE_B = "b2" * 32
CLUSTER = {
    "cluster": {"id": "c3" * 16, "name": "prod"},
    "node": {"id": NODE_A, "name": "alpha"},
    "members": [
        {
            "id": NODE_A,
            "name": "alpha",
            "peer": "127.0.0.1:7053",
            "state": "self",
            "membership": "active",
            "last_seen": None,
            "lag": {"events": 0, "seconds": 0.0},
        },
        {
            "id": NODE_B,
            "name": "beta",
            "peer": "127.0.0.1:7054",
            "state": "down",
            "membership": "stale",
            "last_seen": "2025-11-30T08:26:00Z",
            "lag": {"events": 42, "seconds": 12.345},
        },
    ],
    "clock": {"hlc": 1},
    "merkle_root": "9f" * 32,
    "conflicts": 2,
    "invites": [{"jti": "x"}],
}
ZONE_OBJECT = {
    "name": "example.com.",
    "serial": 7,
    "rrsets": 3,
    "records": 4,
    "soa": {
        "mname": "ns1.example.com.",
        "rname": "hostmaster.example.com.",
        "refresh": 7200,
        "retry": 3600,
        "expire": 1209600,
        "minimum": 300,
        "ttl": 3600,
    },
}


# --- rendering ---------------------------------------------------------------------------


def test_table_columns_are_aligned_and_lines_not_padded() -> None:
    table = format_table(["A", "LONG HEADER"], [["wide cell", "x"], ["b", ""]])
    assert table == "A          LONG HEADER\nwide cell  x\nb\n"


def test_zones_table() -> None:
    body = {"zones": [{"name": "example.com.", "serial": 1, "rrsets": 5, "records": 7}]}
    assert render_zones(body).splitlines() == [
        "ZONE          SERIAL  RRSETS  RECORDS",
        "example.com.  1       5       7",
    ]


def test_members_table_shows_the_cut_of_departed_members() -> None:
    body = {
        "members": [
            {
                "id": NODE_A,
                "name": "ns1",
                "peer": "192.0.2.1:7053",
                "membership": "active",
                "cut": None,
                "cut_reports": 0,
            },
            {
                "id": NODE_B,
                "name": "ns2",
                "peer": "192.0.2.2:7053",
                "membership": "removed",
                "cut": 41,
                "cut_reports": 1,
            },
        ]
    }
    lines = render_members(body).splitlines()
    assert lines[0].split() == ["ID", "NAME", "PEER", "MEMBERSHIP", "CUT"]
    assert lines[1].split() == [NODE_A, "ns1", "192.0.2.1:7053", "active", "-"]
    assert lines[2].split() == [NODE_B, "ns2", "192.0.2.2:7053", "removed", "41"]


def test_status_header_and_member_table() -> None:
    lines = render_status(CLUSTER).splitlines()
    assert lines[0] == (
        f"cluster prod ({'c3' * 6})  node alpha ({'a1' * 6})  merkle {'9f' * 8}  "
        "conflicts 2  invites 1"
    )
    assert lines[1] == ""
    assert lines[2].split() == ["NAME", "ID", "PEER", "STATE", "MEMBERSHIP", "LAST", "SEEN", "LAG"]
    assert lines[3].split() == [
        "alpha",
        "a1" * 6,
        "127.0.0.1:7053",
        "self",
        "active",
        "-",
        "0",
        "events,",
        "0.0s",
    ]
    assert lines[4].split() == [
        "beta",
        "b2" * 6,
        "127.0.0.1:7054",
        "down",
        "stale",
        "2025-11-30T08:26:00Z",
        "42",
        "events,",
        "12.3s",
    ]


def test_rrsets_table_has_one_row_per_record() -> None:
    rrsets = [
        {"name": "www.example.com.", "type": "A", "ttl": 300, "records": ["192.0.2.1", "192.0.2.2"]}
    ]
    assert render_rrsets(rrsets).splitlines() == [
        "NAME              TYPE  TTL  RDATA",
        "www.example.com.  A     300  192.0.2.1",
        "www.example.com.  A     300  192.0.2.2",
    ]


def test_import_summary() -> None:
    body = {"zone": ZONE_OBJECT, "imported": {"rrsets": 3, "records": 4}}
    assert render_import(body) == "imported 4 records in 3 rrsets into example.com. (serial 7)\n"


@pytest.mark.parametrize(
    ("render", "body", "missing"),
    [
        (render_status, {**CLUSTER, "members": None}, "'members' is not a list"),
        (render_status, {k: v for k, v in CLUSTER.items() if k != "node"}, "no field 'node'"),
        (render_zones, {"zones": [{"name": "x."}]}, "no field 'serial'"),
        (render_zones, ["not", "an", "object"], "no field 'zones'"),
    ],
)
def test_missing_fields_are_reported_by_name(
    render: Callable[[Any], str], body: Any, missing: str
) -> None:
    with pytest.raises(UnexpectedResponse, match=missing):
        render(body)


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (5 * 2**20, "5.0 MiB"),
        (3 * 2**30, "3.0 GiB"),
    ],
)
def test_byte_counts(count: int, text: str) -> None:
    assert format_bytes(count) == text


def test_upload_progress_line() -> None:
    assert upload_progress("big.zone", 2**20, 4 * 2**20) == (
        "uploading big.zone: 1.0 MiB of 4.0 MiB (25%)"
    )


# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "absolute"),
    [
        ("@", "example.com."),
        ("www", "www.example.com."),
        ("www.example.com", "www.example.com.example.com."),
        ("WWW.Example.COM.", "WWW.Example.COM."),
        ("*.dyn", "*.dyn.example.com."),
    ],
)
def test_owner_names_are_relative_to_the_zone(text: str, absolute: str) -> None:
    assert owner_name(text, ZONE) == dns.name.from_text(absolute)


@pytest.mark.parametrize("text", ["www.example.org.", "a..b"])
def test_bad_owner_names_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        owner_name(text, ZONE)


def test_rdata_names_are_made_absolute_in_the_zone() -> None:
    mx = dns.rdatatype.MX
    assert rdata_text("10 mail", mx, ZONE) == "10 mail.example.com."
    assert rdata_text("10 mx.example.org.", mx, ZONE) == "10 mx.example.org."
    with pytest.raises(UsageError, match="invalid MX rdata 'mail'"):
        rdata_text("mail", mx, ZONE)


def test_global_json_flag_is_kept_and_also_accepted_after_the_subcommand() -> None:
    parser = build_parser()
    assert parser.parse_args(["--json", "status"]).json is True
    assert parser.parse_args(["status", "--json"]).json is True
    assert parser.parse_args(["status"]).json is False


def counted(text: bytes, chunk: int) -> int:
    counter = RecordLineCounter()
    for start in range(0, len(text), chunk):
        counter.feed(text[start : start + chunk])
    return counter.finish()


@pytest.mark.parametrize("zone_file", ["edge.example.zone", "peer.example.zone"])
def test_record_count_matches_dnspython(zone_file: str) -> None:
    text = (DATA / zone_file).read_bytes()
    zone = dns.zone.from_text(text.decode(), relativize=False, check_origin=False)
    records = sum(len(rdataset) for _, rdataset in zone.iterate_rdatasets())
    assert counted(text, 4096) == records


def test_record_count_joins_parenthesised_records_across_chunk_boundaries() -> None:
    text = (
        b"$ORIGIN example.com.\n"
        b"@ SOA ns1 host ( 1 ; serial (not a paren)\n"
        b"   7200 3600\n"
        b"   1209600 300 )\n"
        b'txt TXT "a ( b" "\\" ("\n'
        b"    A 192.0.2.1 ; owner inherited\n"
        b"\n"
        b"; a comment ( with a paren\n"
        b"last A 192.0.2.2"
    )
    assert all(counted(text, size) == 4 for size in range(1, len(text) + 1))


# --- whole commands against a stand-in node ----------------------------------------------


class FakeNode:
    """Answers each request with the next canned response and remembers the requests."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0)


class Result:
    def __init__(self, status: int, out: str, err: str) -> None:
        self.status = status
        self.out = out
        self.err = err


def ctl(
    argv: list[str],
    handler: Callable[[httpx.Request], httpx.Response],
    environ: dict[str, str] | None = None,
) -> Result:
    out, err = io.StringIO(), io.StringIO()
    status = run(
        argv,
        environ={"PEER53_TOKEN": "secret"} if environ is None else environ,
        stdout=out,
        stderr=err,
        transport=httpx.MockTransport(handler),
    )
    return Result(status, out.getvalue(), err.getvalue())


def test_status_renders_the_cluster_and_json_prints_the_body_exactly() -> None:
    body = json.dumps(CLUSTER, indent=1) + "\n"
    node = FakeNode(*(httpx.Response(200, text=body) for _ in range(3)))

    table = ctl(["status"], node)
    assert table.status == 0
    assert table.out == render_status(CLUSTER)
    assert ctl(["status", "--json"], node).out == body
    assert ctl(["--json", "status"], node).out == body
    assert [r.url.path for r in node.requests] == ["/api/v1/cluster"] * 3
    assert node.requests[0].headers["authorization"] == "Bearer secret"


def test_flags_win_over_environment() -> None:
    node = FakeNode(httpx.Response(200, json={"zones": []}))
    environ = {"PEER53_API": "http://127.0.0.1:1", "PEER53_TOKEN": "from-env"}
    result = ctl(["--api", "http://127.0.0.1:9", "--token", "flag", "zone", "list"], node, environ)
    assert result.status == 0
    assert str(node.requests[0].url) == "http://127.0.0.1:9/api/v1/zones"
    assert node.requests[0].headers["authorization"] == "Bearer flag"


def test_token_file_and_default_api(tmp_path: Path) -> None:
    token_file = tmp_path / "admin.token"
    token_file.write_text("from-file\n")
    node = FakeNode(httpx.Response(200, json={"zones": []}))
    assert ctl(["--token-file", str(token_file), "zone", "list"], node, {}).status == 0
    assert str(node.requests[0].url) == "http://127.0.0.1:8053/api/v1/zones"
    assert node.requests[0].headers["authorization"] == "Bearer from-file"


def test_invite_create_prints_only_the_token() -> None:
    node = FakeNode(
        httpx.Response(
            201, json={"token": "eyJ.tok.en", "jti": "j", "expires": "2030-01-01T00:00:00Z"}
        )
    )
    result = ctl(["invite", "create", "--ttl", "2h"], node)
    assert (result.status, result.out, result.err) == (0, "eyJ.tok.en\n", "")
    assert node.requests[0].method == "POST"
    assert json.loads(node.requests[0].content) == {"ttl": 7200}


def test_zone_create_sends_absolute_names() -> None:
    node = FakeNode(httpx.Response(201, json=ZONE_OBJECT))
    result = ctl(
        ["zone", "create", "example.com", "--ns", "ns1.example.com", "--ns", "ns2.example.net."],
        node,
    )
    assert result.status == 0
    assert json.loads(node.requests[0].content) == {
        "name": "example.com.",
        "ns": ["ns1.example.com.", "ns2.example.net."],
    }
    assert (
        "soa      ns1.example.com. hostmaster.example.com. 7200 3600 1209600 300 (ttl 3600)"
        in result.out
    )


def test_rrset_set_resolves_the_name_and_sends_each_rdata() -> None:
    rrset = {"name": "example.com.", "type": "MX", "ttl": 300, "records": ["10 mail.example.com."]}
    node = FakeNode(httpx.Response(200, json=rrset))
    result = ctl(["rrset", "set", "example.com", "@", "mx", "300", "10 mail"], node)
    assert result.status == 0, result.err
    request = node.requests[0]
    assert (request.method, request.url.raw_path) == (
        "PUT",
        b"/api/v1/zones/example.com./rrsets/example.com./MX",
    )
    assert json.loads(request.content) == {"ttl": 300, "records": ["10 mail.example.com."]}
    assert result.out == render_rrsets([rrset])


def test_rrset_list_filters_and_delete_confirms() -> None:
    node = FakeNode(httpx.Response(200, json={"rrsets": []}), httpx.Response(204))
    assert (
        ctl(["rrset", "list", "example.com", "--name", "www", "--type", "aaaa"], node).status == 0
    )
    assert dict(node.requests[0].url.params) == {"name": "www.example.com.", "type": "AAAA"}
    deleted = ctl(["rrset", "delete", "example.com", "www", "A"], node)
    assert deleted.out == "deleted www.example.com. A from zone example.com.\n"
    assert node.requests[1].method == "DELETE"


def test_root_zone_survives_url_normalisation() -> None:
    assert path_segment(".") == "%2E"
    node = FakeNode(httpx.Response(204))
    assert ctl(["zone", "delete", "."], node).status == 0
    assert node.requests[0].url.raw_path == b"/api/v1/zones/%2E"


def test_zone_import_streams_the_file_with_progress(tmp_path: Path) -> None:
    lines = [b"$ORIGIN big.example.", b"@ 300 SOA ns1 host 1 2 3 4 5", b"@ 300 NS ns1"]
    lines += [b"host%d 300 A 192.0.2.%d" % (i, i % 250) for i in range(9000)]
    zone_file = tmp_path / "big.zone"
    zone_file.write_bytes(b"\n".join(lines) + b"\n")
    answer = {
        "zone": {**ZONE_OBJECT, "name": "big.example."},
        "imported": {"rrsets": 9002, "records": 9002},
    }
    node = FakeNode(httpx.Response(200, json=answer))

    result = ctl(["zone", "import", "big.example", str(zone_file)], node)

    assert result.status == 0, result.err
    request = node.requests[0]
    assert (request.method, request.url.path) == ("PUT", "/api/v1/zones/big.example.")
    assert request.headers["content-type"] == "text/dns"
    assert request.headers["content-length"] == str(zone_file.stat().st_size)
    assert request.content == zone_file.read_bytes()
    progress = result.err.splitlines()
    assert len(progress) > 3
    assert progress[-3] == upload_progress(
        "big.zone", zone_file.stat().st_size, zone_file.stat().st_size
    )
    assert progress[-2] == "importing 9002 records..."
    assert progress[-1] == "importing 9002 records... done"
    assert result.out == "imported 9002 records in 9002 rrsets into big.example. (serial 7)\n"


def test_zone_import_of_a_missing_file_fails_before_sending(tmp_path: Path) -> None:
    node = FakeNode()
    result = ctl(["zone", "import", "example.com", str(tmp_path / "nope.zone")], node)
    assert result.status == 1
    assert (
        result.err
        == f"peer53ctl: error: cannot read {tmp_path / 'nope.zone'}: No such file or directory\n"
    )
    assert node.requests == []


def test_zone_export_asks_for_a_zone_file() -> None:
    text = "example.com. 3600 IN SOA ns1.example.com. h.example.com. 1 2 3 4 5"
    node = FakeNode(httpx.Response(200, text=text, headers={"content-type": "text/dns"}))
    result = ctl(["zone", "export", "example.com."], node)
    assert result.out == text + "\n"
    assert node.requests[0].headers["accept"] == "text/dns"


def test_api_errors_are_one_line_with_code_and_message() -> None:
    error = {"error": {"code": "invalid_zone_file", "message": "bad rdata", "line": 12}}
    node = FakeNode(httpx.Response(400, json=error))
    result = ctl(["zone", "list"], node)
    assert (result.status, result.out) == (1, "")
    assert result.err == "peer53ctl: error: invalid_zone_file: bad rdata (line 12)\n"


def test_error_without_a_json_body_and_missing_token_hint() -> None:
    node = FakeNode(
        httpx.Response(502, html="<html>\n<b>Bad Gateway</b>\n</html>"),
        httpx.Response(503, text="upstream\n  overloaded\n"),
        httpx.Response(401, json={"error": {"code": "unauthorized", "message": "token required"}}),
    )
    assert ctl(["zone", "list"], node).err == "peer53ctl: error: http 502: Bad Gateway\n"
    assert ctl(["zone", "list"], node).err == "peer53ctl: error: http 503: upstream overloaded\n"
    assert ctl(["zone", "list"], node, {}).err == (
        "peer53ctl: error: unauthorized: token required "
        "(no API token given: use --token, --token-file or PEER53_TOKEN)\n"
    )


def test_unreachable_node_and_unexpected_body_are_one_line() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    refused = ctl(["status"], refuse)
    assert (refused.status, refused.err) == (
        1,
        "peer53ctl: error: cannot reach node API at http://127.0.0.1:8053: "
        "[Errno 111] Connection refused\n",
    )
    odd = ctl(["status"], FakeNode(httpx.Response(200, json={"cluster": {}, "node": {}})))
    assert odd.err == "peer53ctl: error: the node's response has no field 'name'\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--api", "127.0.0.1:8053", "status"], "invalid API URL '127.0.0.1:8053'"),
        ([], "required: COMMAND (see 'peer53ctl --help')"),
        (["zone", "create"], "required: NAME (see 'peer53ctl zone create --help')"),
        (["status", "--bogus"], "unrecognized arguments: --bogus"),
        (["invite", "create", "--ttl", "0"], "longer than 0 seconds"),
        (
            ["rrset", "set", "example.com", "www.example.org.", "A", "60", "192.0.2.1"],
            "not in zone",
        ),
        (["rrset", "set", "example.com", "www", "A", "60", "192.0.2.999"], "invalid A rdata"),
    ],
)
def test_usage_errors_exit_2_without_contacting_the_node(argv: list[str], message: str) -> None:
    node = FakeNode()
    result = ctl(argv, node)
    assert result.status == 2
    assert result.err.startswith("peer53ctl: error: ")
    assert message in result.err
    assert result.err.count("\n") == 1
    assert node.requests == []


def test_generate_lines_count_their_records() -> None:
    from ctl.main import RecordLineCounter

    counter = RecordLineCounter()
    counter.feed(
        b"$ORIGIN x.\n$GENERATE 1-20 host-$ A 198.51.100.$\n$generate 0-9/2 h$ A 1.2.3.4\n"
    )
    counter.feed(b"www A 1.2.3.4\n")
    assert counter.finish() == 20 + 5 + 1


def test_failed_import_does_not_say_done(tmp_path: Path) -> None:
    zone_file = tmp_path / "bad.zone"
    zone_file.write_bytes(b"@ 300 SOA ns1 host 1 2 3 4 5\nbad A nope\n")
    error = {"error": {"code": "zonefile_error", "message": "bad address", "line": 2}}
    result = ctl(
        ["zone", "import", "bad.example", str(zone_file)], FakeNode(httpx.Response(400, json=error))
    )
    assert result.status == 1
    lines = result.err.splitlines()
    assert lines[-2] == "importing 2 records... failed"
    assert lines[-1].startswith("peer53ctl: error: zonefile_error")


def test_status_lists_what_was_refused_from_peers() -> None:
    body = {
        **CLUSTER,
        "rejected_events": {"unknown_origin": 1, "bad_signature": 3},
        "refused_links": {"not_member": 2},
    }
    lines = render_status(body).splitlines()
    assert lines[1] == "events refused from peers: bad_signature 3, unknown_origin 1"
    assert lines[2] == "links refused from peers: not_member 2"
    assert render_status({**CLUSTER, "rejected_events": {}}) == render_status(CLUSTER)
