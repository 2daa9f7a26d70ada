"""./scripts/demo, as a new user runs it: a node with the example zones, stopped by Ctrl-C."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query

ROOT = Path(__file__).parent.parent
DEADLINE = 120.0


def test_demo_serves_the_examples_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PEER53_DEMO_DIR": str(tmp_path / "demo"),
        "PEER53_DEMO_DNS": "127.0.0.1:0",
        "PEER53_DEMO_API": "127.0.0.1:0",
    }
    out = tmp_path / "demo.out"
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
        bound = json.loads((tmp_path / "demo" / "node1" / "listen.json").read_text())
        port = int(bound["dns"].rsplit(":", 1)[1])
        assert f"-p {port} www.example.com" in out.read_text()
        answer = dns.query.udp(
            dns.message.make_query("host-7.example.net.", "A"), "127.0.0.1", port=port, timeout=5
        )
        assert answer.answer[0][0].to_text() == "198.51.100.7"
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert demo.wait(timeout=30) == 130
        assert "received SIGINT" in (tmp_path / "demo" / "node1.log").read_text()
        assert "stopped" in (tmp_path / "demo" / "node1.log").read_text(), out.read_text()
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
