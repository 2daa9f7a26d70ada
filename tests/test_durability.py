"""Kill -9 during a stream of API writes: every write that got a 2xx survives."""

import threading
from pathlib import Path

import httpx

from tests.nodeproc import NodeProcess

WRITES = 400


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    node = NodeProcess.init(tmp_path / "data").start()
    acknowledged: list[int] = []
    try:
        with node.client() as c:
            assert c.post("/api/v1/zones", json={"name": "crash.test"}).status_code == 201
        killed = threading.Event()

        def writer() -> None:
            with node.client() as c:
                for i in range(WRITES):
                    body = {"ttl": 60, "records": [f"192.0.2.{i % 250 + 1}"]}
                    try:
                        r = c.put(f"/api/v1/zones/crash.test/rrsets/w{i}/A", json=body)
                    except httpx.HTTPError:
                        return
                    if r.status_code == 201:
                        acknowledged.append(i)
                    if len(acknowledged) == 60:
                        killed.set()

        thread = threading.Thread(target=writer)
        thread.start()
        assert killed.wait(timeout=60)
        node.kill9()
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert len(acknowledged) >= 60
        node.start()
        with node.client() as c:
            rrsets = c.get("/api/v1/zones/crash.test/rrsets", params={"type": "A"}).json()["rrsets"]
        present = {r["name"] for r in rrsets}
        missing = [i for i in acknowledged if f"w{i}.crash.test." not in present]
        assert missing == []
    finally:
        node.stop()
