"""./scripts/demo, as a new user runs it: three nodes formed by invites, the example zones
served by each, stopped by Ctrl-C; a second run starts afresh."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query

ROOT = Path(__file__).parent.parent
DEADLINE = 180.0
NODES = ("node1", "node2", "node3")


def _run_demo(data: Path, out: Path) -> None:
    env = {**os.environ, "PEER53_DEMO_DIR": str(data), "PEER53_DEMO_PORTS": "any"}
    with out.open("wb") as sink:
        demo = subprocess.Popen(
            [str(ROOT / "scripts" / "demo")],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + DEADLINE
        while "Press Ctrl-C" not in out.read_text():
            assert demo.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        text = out.read_text()
        assert "have not converged" not in text, text
        for node in NODES:
            bound = json.loads((data / node / "listen.json").read_text())
            port = int(bound["dns"].rsplit(":", 1)[1])
            assert f"{node}:  dig @127.0.0.1 -p {port} www.example.com" in text
            query = dns.message.make_query("host-7.example.net.", "A")
            answer = dns.query.udp(query, "127.0.0.1", port=port, timeout=5)
            assert answer.answer[0][0].to_text() == "198.51.100.7", node
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert demo.wait(timeout=60) == 130
        for node in NODES:
            log = (data / f"{node}.log").read_text()
            assert "received SIGINT" in log and "stopped" in log, log
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


def test_demo_forms_a_cluster_serves_the_examples_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    _run_demo(tmp_path / "demo", tmp_path / "first.out")
    _run_demo(tmp_path / "demo", tmp_path / "second.out")
    assert "removing the previous demo data" in (tmp_path / "second.out").read_text()
