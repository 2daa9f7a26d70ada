"""Real ``peer53`` node processes for integration tests.

Nodes bind port 0 and report what they bound in DIR/listen.json; every wait polls with a
deadline, and every process started is stopped by the fixture that started it.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import httpx

BIN = Path(sys.executable).parent
START_DEADLINE = 60.0


def peer53(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "peer53"), *args], capture_output=True, text=True, check=check, timeout=60
    )


class NodeProcess:
    def __init__(self, data_dir: Path, token: str) -> None:
        self.data_dir = data_dir
        self.token = token
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "node.log"
        self.dns_port = 0
        self.api_url = ""

    @classmethod
    def init(cls, data_dir: Path, name: str = "n1") -> NodeProcess:
        result = peer53(
            "init",
            "--data-dir",
            str(data_dir),
            "--name",
            name,
            "--dns",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--peer",
            "127.0.0.1:0",
        )
        return cls(data_dir, result.stdout.strip().splitlines()[-1])

    def start(self, clock_offset: str | None = None) -> NodeProcess:
        """Run the node; with ``clock_offset`` (e.g. "-1h") its wall clock is skewed by
        libfaketime, while its monotonic clock (trio's timers) stays true."""
        listen = self.data_dir / "listen.json"
        listen.unlink(missing_ok=True)
        command = [str(BIN / "peer53"), "run", "--data-dir", str(self.data_dir)]
        env = None
        if clock_offset is not None:
            # Preloaded into the node itself (not the faketime wrapper, which would stand
            # between the test and the node's signals).
            found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
            if not found:
                raise RuntimeError("libfaketime is not installed: run ./scripts/setup")
            env = {
                **os.environ,
                "LD_PRELOAD": found[0],
                "FAKETIME": clock_offset,
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            }
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + START_DEADLINE
        while not listen.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"node exited with {self.proc.returncode}:\n{self.log.read_text()}"
                )
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise TimeoutError(f"node did not start:\n{self.log.read_text()}")
            time.sleep(0.02)
        bound = json.loads(listen.read_text())
        self.dns_port = int(bound["dns"].rsplit(":", 1)[1])
        self.api_url = f"http://{bound['api']}"
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=30.0)

    def query(self, wire_or_msg: dns.message.Message, tcp: bool = False) -> dns.message.Message:
        if tcp:
            return dns.query.tcp(wire_or_msg, "127.0.0.1", port=self.dns_port, timeout=5)
        return dns.query.udp(wire_or_msg, "127.0.0.1", port=self.dns_port, timeout=5)

    def env(self) -> dict[str, Any]:
        return {**os.environ, "PEER53_API": self.api_url, "PEER53_TOKEN": self.token}
