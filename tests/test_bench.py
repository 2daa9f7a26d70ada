"""scripts/bench: its workload, its reading of dnsperf, one tiny real run against Knot and
peer53 (and an interrupted one, which must leave no server behind), the replication
figures from tiny clusters (interrupted too: no node may be left behind), and the cost of
anti-entropy repair between two in-memory trees."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import time
from functools import partial
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import h11
import pytest
import trio
import trio.testing

from protocol.merkle import ENTRY_BYTES
from scripts.benchlib import __main__ as bench_main
from scripts.benchlib import http1, repair, replication, wakeup
from scripts.benchlib.__main__ import _parser, _repair_plan, _replication_plan, main
from scripts.benchlib.answers import answer_fits
from scripts.benchlib.dnsperf import parse_latencies, parse_summary
from scripts.benchlib.http1 import Http1Client
from scripts.benchlib.replication import DEFAULT, NONE, Figure, ReplicationPlan, measure
from scripts.benchlib.report import _compaction, _repair
from scripts.benchlib.workload import Kind, Query, build_workload

ROOT = Path(__file__).parent.parent
BENCH = ROOT / "scripts" / "bench"
DEADLINE = 120.0
DNS_TINY = ["--runs", "1", "--seconds", "1", "--warmup", "0", "--latency-seconds", "1"]
REPLICATION_TINY = [
    "--replication-sizes",
    "3",
    "--replication-writes",
    "10",
    "--replication-changes",
    "100",
    "--replication-batch",
    "40",
]
REPAIR_TINY = ["--repair-sizes", "2000"]
COMPACTION_TINY = ["--compaction-rewrites", "3000"]

SUMMARY = """\
DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.1 -p 25353 -d q.txt -l 2 -c 10 -T 2 -q 100
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         222486
  Queries completed:    222480 (100.00%)
  Queries lost:         6 (0.00%)

  Response codes:       NOERROR 189108 (85.00%), NXDOMAIN 33372 (15.00%)
  Average packet size:  request 31, response 62
  Run time (s):         2.000432
  Queries per second:   111218.976701

  Average Latency (s):  0.000681 (min 0.000015, max 0.004838)
  Latency StdDev (s):   0.000439
"""


def test_workload_has_the_documented_mix_and_zone() -> None:
    workload = build_workload()
    assert workload.mix() == {
        Kind.POSITIVE: 6200,
        Kind.NXDOMAIN: 1500,
        Kind.NODATA: 1500,
        Kind.CNAME: 300,
        Kind.WILDCARD: 200,
        Kind.REFERRAL: 200,
        Kind.APEX: 100,
    }
    assert 950 <= workload.records() <= 1100
    zone = dns.zone.from_text(workload.zone_text(), workload.origin, relativize=False)
    assert sum(len(rdataset) for _, rdataset in zone.iterate_rdatasets()) == workload.records()
    lines = workload.query_text().splitlines()
    assert len(lines) == 10_000 and lines[0] == workload.queries[0].line()
    for query in workload.distinct_queries():
        node = zone.get_node(query.name)
        if query.kind in (Kind.POSITIVE, Kind.APEX):
            assert node is not None and node.get_rdataset(dns.rdataclass.IN, query.rdtype)
        elif query.kind == Kind.NODATA and node is not None:
            assert node.get_rdataset(dns.rdataclass.IN, query.rdtype) is None
        elif query.kind in (Kind.NXDOMAIN, Kind.WILDCARD):
            assert node is None


def test_workload_is_the_same_for_the_same_seed() -> None:
    assert build_workload(500, seed=7).queries == build_workload(500, seed=7).queries
    assert build_workload(500, seed=7).queries != build_workload(500, seed=8).queries


def test_reads_dnsperf_statistics() -> None:
    summary = parse_summary(SUMMARY)
    assert (summary.sent, summary.completed, summary.lost) == (222486, 222480, 6)
    assert summary.qps == pytest.approx(111218.976701)
    assert summary.average_latency == pytest.approx(0.000681)
    assert summary.rcodes == {"NOERROR": 189108, "NXDOMAIN": 33372}
    with pytest.raises(ValueError, match="Queries per second"):
        parse_summary(SUMMARY.replace("Queries per second", "Rate"))


def test_latency_percentiles_count_timeouts_but_not_interrupted_queries() -> None:
    lines = [f"> NOERROR host-{i}.bench.example. A 0.{i + 1:06d}" for i in range(97)]
    lines += ["> NXDOMAIN nx.bench.example. A 0.000500", "> T a.bench.example. A"]
    lines += ["> T b.bench.example. A", "> I c.bench.example. A", "[Status] Testing complete"]
    latencies = parse_latencies("\n".join(lines))
    assert latencies.unanswered == 2 and len(latencies.seconds) == 98
    assert latencies.percentile(0.5) == pytest.approx(0.000050)
    assert latencies.percentile(0.98) == pytest.approx(0.000500)
    assert latencies.percentile(0.99) == math.inf


def _response(query: Query, aa: bool = True) -> dns.message.Message:
    response = dns.message.make_response(dns.message.make_query(query.name, query.rdtype))
    if aa:
        response.flags |= dns.flags.AA
    return response


def test_answer_kinds() -> None:
    name = dns.name.from_text("sub-1.bench.example.")
    referral = Query(name, dns.rdatatype.A, Kind.REFERRAL)
    response = _response(referral, aa=False)
    response.authority.append(dns.rrset.from_text(name, 3600, "IN", "NS", "ns1.sub-1"))
    assert answer_fits(referral, response)
    response.flags |= dns.flags.AA
    assert not answer_fits(referral, response)
    nodata = Query(dns.name.from_text("lab.bench.example."), dns.rdatatype.A, Kind.NODATA)
    response = _response(nodata)
    assert not answer_fits(nodata, response)
    response.authority.append(
        dns.rrset.from_text("bench.example.", 300, "IN", "SOA", "ns1. h. 1 2 3 4 5")
    )
    assert answer_fits(nodata, response)
    assert not answer_fits(Query(nodata.name, nodata.rdtype, Kind.NXDOMAIN), response)
    response.set_rcode(dns.rcode.REFUSED)
    assert not answer_fits(nodata, response)


def _start_bench(tmp_path: Path, *options: str) -> tuple[subprocess.Popen[bytes], Path]:
    errors = tmp_path / "bench.err"
    with (tmp_path / "bench.out").open("wb") as out, errors.open("wb") as err:
        bench = subprocess.Popen([str(BENCH), *options], stdout=out, stderr=err)
    return bench, errors


def _work_directory(errors: Path) -> Path:
    found = re.search(r"work directory (\S+);", errors.read_text())
    assert found, errors.read_text()
    return Path(found.group(1))


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _poller_response(
    query: dns.message.Message, rcode: dns.rcode.Rcode, *records: tuple[str, str, str]
) -> bytes:
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    response.set_rcode(rcode)
    for owner, rdtype, text in records:
        response.answer.append(dns.rrset.from_text(owner, replication.TTL, "IN", rdtype, text))
    return response.to_wire()


def test_the_poller_reads_the_usual_answer_without_parsing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write = replication._Expected.make(dns.name.from_text("rp-7.bench.example."), "10.0.0.7")
    query = dns.message.from_wire(write.query)
    served = _poller_response(query, dns.rcode.NOERROR, ("rp-7.bench.example.", "A", "10.0.0.7"))
    other = _poller_response(query, dns.rcode.NOERROR, ("rp-7.bench.example.", "A", "10.0.0.8"))
    failed = _poller_response(query, dns.rcode.SERVFAIL, ("rp-7.bench.example.", "A", "10.0.0.7"))

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(replication.dns.message, "from_wire", no_parse)
    assert replication._serves(served, write) is True
    assert replication._serves(other, write) is False  # the address is not in it at all
    monkeypatch.undo()
    assert replication._serves(failed, write) is False
    unanswered = _poller_response(query, dns.rcode.NXDOMAIN)
    assert replication._serves(unanswered, write) is False
    # The address for another name: not the usual answer, so parsed, and refused.
    elsewhere = dns.message.make_query("rp-8.bench.example.", "A")
    elsewhere.id = 0
    wrong = _poller_response(elsewhere, dns.rcode.NOERROR, ("rp-8.bench.example.", "A", "10.0.0.7"))
    assert replication._serves(wrong, write) is False


@pytest.mark.integration
@pytest.mark.interop
def test_tiny_bench_reports_every_server_and_mode(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    options = [*DNS_TINY, *REPLICATION_TINY, *REPAIR_TINY, *COMPACTION_TINY]
    options += ["--latency-rate", "2000", "--modes", "plain"]
    options += ["--json", str(results)]
    bench, errors = _start_bench(tmp_path, *options)
    try:
        assert bench.wait(timeout=DEADLINE) == 0, errors.read_text()
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    report = (tmp_path / "bench.out").read_text()
    found = json.loads(results.read_text())
    runs = found["runs"]
    assert {(run["server"], run["mode"]) for run in runs} == {
        ("knot", "plain"),
        ("peer53", "plain"),
    }
    for run in runs:
        assert run["qps"] > 0 and run["completed"] > 0, run
        assert run["cpu_us_per_query"] > 0 and run["p99_ms"] > 0, run
        assert run["p50_ms"] <= run["p99_ms"] and run["lost"] >= 0, run
        assert set(run["rcodes"]) == {"NOERROR", "NXDOMAIN"}, run
    assert [check["unexpected"] for check in found["answer_checks"]] == [0, 0]
    assert found["workload"]["records"] == build_workload().records()
    assert {ratio["mode"] for ratio in found["ratios"]} == {"plain"}
    for ratio in found["ratios"]:
        assert ratio["server"] == "peer53" and ratio["qps"] > 0 and ratio["cpu"] > 0
        assert isinstance(ratio["first target"], bool)
    replication = {figure["key"]: figure for figure in found["replication"]}
    assert set(replication) == PROPAGATION_KEYS | THROUGHPUT_KEYS | WAKEUP_KEYS
    value = {key: figure["value"] for key, figure in replication.items()}
    assert value["propagation.n3.writes"] == 10
    assert 0 < value["propagation.n3.p50"] <= value["propagation.n3.p99"]
    assert value["propagation.n3.p99"] <= value["propagation.n3.max"]
    assert 0 < value["propagation.n3.rate"] <= 100.0 * 1.01
    assert value["propagation.n3.queries_per_write"] >= 1  # each node is asked at least once
    assert value["throughput.n3.sent"] == value["throughput.n3.applied"] == 100
    assert value["throughput.n3.events"] >= 100 / 40
    applied, accepted = (
        value[f"throughput.n3.{key}_per_second"] for key in ("applied", "accepted")
    )
    assert 0 < applied <= accepted
    seconds = value["throughput.n3.seconds"]  # rounded to 0.01 s in the JSON
    assert 100 / (seconds + 0.005) <= applied <= 100 / max(seconds - 0.005, 0.001)
    assert {replication[k]["unit"] for k in ("propagation.n3.p50", "propagation.n3.max")} == {"ms"}
    for key in ("propagation.n3", "throughput.n3"):
        assert all(value[f"{key}.{cores}"] <= (os.cpu_count() or 1) * 1.05 for cores in CPU_KEYS)
    # Each node applies every write: the nodes spend at least a few hundred µs on each.
    assert value["propagation.n3.node_cpu_per_write"] >= 300
    assert value["throughput.n3.node_cpu_per_change"] >= 100
    assert "3 nodes up, converged" in errors.read_text()
    for figure in found["replication"]:
        assert figure["value"] > 0 and figure["unit"], figure
        assert f"  {figure['name']}: {figure['value']:g} {figure['unit']}" in report, report
    for line in ("ratios to knot:", "plain    peer53", "plain    knot", str(results)):
        assert line in report, report
    repaired = {figure["key"]: figure["value"] for figure in found["repair"]}
    assert set(repaired) == _repair_keys(2000)
    assert all(value > 0 for value in repaired.values()), repaired
    assert "\n".join(_repair([Figure(**figure) for figure in found["repair"]])) in report
    curve = {figure["key"]: figure["value"] for figure in found["compaction"]}
    assert set(curve) == {
        f"compaction.r{rewrites}.{what}"
        for rewrites in (1000, 2000, 3000)
        for what in ("bytes", "log_events", "tombstones")
    }
    assert curve["compaction.r3000.tombstones"] == 1000  # the last round's only
    assert 0 < curve["compaction.r3000.log_events"] <= 4 < curve["compaction.r3000.bytes"]
    compacted = [Figure(**figure) for figure in found["compaction"]]
    assert "\n".join(_compaction(compacted)) in report
    assert not _work_directory(errors).exists()


@pytest.mark.integration
@pytest.mark.interop
def test_interrupted_bench_stops_its_servers(tmp_path: Path) -> None:
    bench, errors = _start_bench(tmp_path, "--servers", "knot", "--runs", "3", "--seconds", "5")
    try:
        deadline = time.monotonic() + DEADLINE
        while "run 1/3 plain knot" not in errors.read_text():
            assert bench.poll() is None, errors.read_text()
            assert time.monotonic() < deadline, errors.read_text()
            time.sleep(0.05)
        bench.send_signal(signal.SIGINT)
        assert bench.wait(timeout=30) == 130, errors.read_text()
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    port = re.search(r"knot serves \S+ on 127\.0\.0\.1:(\d+)", errors.read_text())
    assert port, errors.read_text()
    assert _port_is_free(int(port.group(1)))
    assert not _work_directory(errors).exists()
    assert "interrupted" in errors.read_text()


CPU_KEYS = ("node_cores", "bench_cores")
PROPAGATION_KEYS = {
    f"propagation.n3.{key}"
    for key in (
        "p50",
        "p99",
        "max",
        "writes",
        "rate",
        "queries_per_write",
        "node_cpu_per_write",
        *CPU_KEYS,
    )
}
THROUGHPUT_KEYS = {
    f"throughput.n3.{key}"
    for key in (
        "applied_per_second",
        "accepted_per_second",
        "sent",
        "applied",
        "events",
        "seconds",
        "node_cpu_per_change",
        *CPU_KEYS,
    )
}


def test_replication_plan_forms_the_clusters_it_needs(tmp_path: Path) -> None:
    assert DEFAULT.clusters() == [3, 5]
    assert ReplicationPlan(sizes=(5,)).clusters() == [3, 5]
    assert ReplicationPlan(sizes=(5,), changes=0).clusters() == [5]
    assert ReplicationPlan(sizes=(3, 5), writes=0).clusters() == [3]
    assert measure(tmp_path, build_workload(100), NONE) == []
    assert list(tmp_path.iterdir()) == []
    parser = _parser()
    skipped = parser.parse_args(["--no-replication", "--replication-sizes", "4"])
    assert _replication_plan(skipped, parser, print) is NONE
    chosen = parser.parse_args([*REPLICATION_TINY, "--replication-rate", "50"])
    assert _replication_plan(chosen, parser, print) == ReplicationPlan(
        sizes=(3,), writes=10, rate=50.0, changes=100, batch=40
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--replication-sizes", "1,3"])


def _processes_under(directory: Path) -> list[str]:
    """Command lines of running processes that mention ``directory``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and int(entry.name) != os.getpid() and str(directory) in argv:
            found.append(argv)
    return found


@pytest.mark.integration
@pytest.mark.interop
def test_bench_interrupted_during_replication_stops_every_node(tmp_path: Path) -> None:
    options = [*DNS_TINY, "--servers", "knot", "--modes", "plain", *REPLICATION_TINY]
    bench, errors = _start_bench(tmp_path, *options, "--replication-writes", "2000")
    try:
        deadline = time.monotonic() + DEADLINE
        while "writes at 100/s to 3 nodes" not in errors.read_text():
            assert bench.poll() is None, errors.read_text()
            assert time.monotonic() < deadline, errors.read_text()
            time.sleep(0.05)
        workdir = _work_directory(errors)
        assert len(_processes_under(workdir)) == 3
        bench.send_signal(signal.SIGINT)
        assert bench.wait(timeout=60) == 130, errors.read_text()
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    assert "interrupted" in errors.read_text()
    assert not _processes_under(workdir)
    assert not workdir.exists()


def _repair_keys(size: int) -> set[str]:
    return {repair.EQUAL_ROOTS} | {
        f"repair.n{size}.k{differing}.{what}"
        for differing in repair.DIFFERENCES
        for what in ("seconds", "bytes", "round_trips")
    }


def test_a_repair_round_costs_a_few_round_trips_and_little_beside_the_events() -> None:
    trees = repair.Trees(5_000, seed=1)
    every_entry = sum(len(key) + 2 * ENTRY_BYTES for key in trees.driver.entries(""))
    equal = trees.round(0)
    assert equal.bytes < 1000 and equal.round_trips == 0
    outcomes = []
    for differing in (1, 50):
        before = trees.driver.root()
        outcomes.append(trees.round(differing))
        assert trees.driver.root() == trees.responder.root() != before
        assert len(trees.driver) == len(trees.responder) == 5_000
    one, fifty = outcomes
    for outcome in outcomes:
        assert 0 < outcome.protocol_round_trips <= outcome.round_trips <= 8, outcome
        assert outcome.seconds > 0
    assert one.bytes * 20 < every_entry
    assert one.bytes < fifty.bytes


def test_a_repair_that_does_not_converge_fails_the_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    trees = repair.Trees(2_000, seed=2)
    monkeypatch.setattr(repair._Link, "_apply", lambda self, tree, keys, registers: [])
    with pytest.raises(RuntimeError, match="roots still differ"):
        trees.round(3)


def test_repair_plan_options_figures_and_table() -> None:
    parser = _parser()
    assert _repair_plan(parser.parse_args([])) == repair.DEFAULT
    assert repair.DEFAULT.sizes == (100_000, 1_000_000)
    skipped = parser.parse_args(["--no-repair", *REPAIR_TINY])
    assert _repair_plan(skipped) is repair.NONE
    chosen = parser.parse_args(["--repair-sizes", "2000,3000"])
    assert _repair_plan(chosen) == repair.RepairPlan(sizes=(2000, 3000))
    with pytest.raises(SystemExit):
        parser.parse_args(["--repair-sizes", "999"])
    assert repair.measure(repair.NONE, print) == []
    assert _repair([]) == ["repair: not measured (--no-repair)"]
    messages: list[str] = []
    figures = repair.measure(repair.RepairPlan(sizes=(2000,)), messages.append)
    assert {figure.key for figure in figures} == _repair_keys(2000)
    units = {figure.key.rsplit(".", 1)[-1]: figure.unit for figure in figures}
    assert units == {"bytes": "bytes", "seconds": "s", "round_trips": "round trips"}
    table = _repair(figures)
    rows = [line.split() for line in table if line.startswith("  ") and line.split()[0] == "2,000"]
    assert [row[1] for row in rows] == ["1", "10", "1,000"], table
    assert any(line.startswith("  equal roots: ") for line in table), table
    assert any("1,000 of 2,000 keys differing" in message for message in messages), messages


def test_compaction_rewrites_must_be_whole_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--compaction-rewrites", "1500"])
    assert "multiple of 1000" in capsys.readouterr().err


def test_a_failed_bench_keeps_its_work_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The servers' logs there are what says why it failed."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.setattr(bench_main.tempfile, "mkdtemp", lambda prefix: str(workdir))

    def failing(*args: object) -> None:
        (workdir / "n1.log").write_text("why")
        raise RuntimeError("peer53 refused the zone (500)")

    monkeypatch.setattr(bench_main, "run_bench", failing)
    monkeypatch.setattr(bench_main.signal, "signal", lambda *args: None)  # keep pytest's
    assert main(["--json", str(tmp_path / "out.json"), "--no-replication"]) == 1
    assert (workdir / "n1.log").read_text() == "why"
    err = capsys.readouterr().err
    assert "refused the zone" in err and f"kept {workdir}" in err
    assert not (tmp_path / "out.json").exists()


WAKEUP_KEYS = {"wakeup.back_to_back", "wakeup.after_sleep"}


def test_the_wakeup_figures_time_the_apply_alone(tmp_path: Path) -> None:
    """Both kinds are timed in CPU µs per event: the sleeps themselves count for nothing
    (ten events asleep for 10 ms each would be 100,000 µs of wall time)."""
    messages: list[str] = []
    figures = wakeup.measure(tmp_path, messages.append, events=10)
    value = {figure.key: figure.value for figure in figures}
    assert set(value) == WAKEUP_KEYS and {figure.unit for figure in figures} == {"µs"}
    assert all(50 <= v < 100_000 / 10 for v in value.values()), value
    assert messages == ["wakeup: 10 events applied back to back, 10 each after a sleep"]


async def _answer_puts(stream: trio.SocketStream, accepted: list[int]) -> None:
    """A keep-alive HTTP/1.1 server that answers every request 201, counting connections."""
    accepted.append(1)
    connection = h11.Connection(h11.SERVER)
    async with stream:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    return
                connection.receive_data(data)
            elif isinstance(event, h11.EndOfMessage):
                response = h11.Response(status_code=201, headers=[("Content-Length", "0")])
                await stream.send_all(
                    connection.send(response) + connection.send(h11.EndOfMessage())
                )
                connection.start_next_cycle()


async def test_the_bench_client_drops_connections_idle_past_its_expiry(
    mock_clock: trio.testing.MockClock,
) -> None:
    """A connection idle for longer than the server may keep it is not used again: a request
    sent on it as the server closes it may be handled and still go unanswered."""
    accepted: list[int] = []
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, partial(_answer_puts, accepted=accepted), 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        client = Http1Client(f"http://127.0.0.1:{port}", {})
        statuses = [(await client.put_json("/a", {}))[0] for _ in range(3)]
        assert (statuses, len(accepted)) == ([201] * 3, 1)
        mock_clock.jump(http1.IDLE_EXPIRY + 0.1)
        assert (await client.put_json("/a", {}))[0] == 201
        assert len(accepted) == 2
        await client.aclose()
        nursery.cancel_scope.cancel()
