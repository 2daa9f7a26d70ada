"""A 100,000-record zone file imported in one request through peer53ctl, with progress."""

import subprocess
import sys
from pathlib import Path

import dns.message

from tests.nodeproc import NodeProcess
from tests.test_metrics import scrape

RECORDS = 100_000
CTL = str(Path(sys.executable).parent / "peer53ctl")


def test_100k_record_zone_imports_in_one_request(tmp_path: Path) -> None:
    zone = tmp_path / "large.test.zone"
    with zone.open("w") as f:
        f.write("$ORIGIN large.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 2026113001 1 1 1 1\n")
        f.write("@ IN NS ns1\nns1 IN A 192.0.2.1\n")
        for i in range(RECORDS - 3):
            f.write(f"h{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
    node = NodeProcess.init(tmp_path / "data").start()
    try:
        frozen_at_start = scrape(node)["peer53_gc_frozen_objects"][0][1]
        result = subprocess.run(
            [CTL, "zone", "import", "large.test", str(zone)],
            capture_output=True,
            text=True,
            env=node.env(),
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        assert "importing" in result.stderr  # progress was shown while it ran
        assert str(RECORDS) in result.stdout + result.stderr
        last = node.query(dns.message.make_query(f"h{RECORDS - 4}.large.test.", "A"))
        assert last.answer[0][0].to_text() == "10.1.134.156"
        soa = node.query(dns.message.make_query("large.test.", "SOA"))
        assert soa.answer[0][0].serial == 2026113001  # the file's serial is kept
        with node.client() as c:
            listed = c.get("/api/v1/zones/large.test").json()
        assert listed["records"] == RECORDS
        # The imported data is out of the garbage collector's walks: each record holds
        # several objects (register, name, rdata, RRset), a full collection would walk them.
        frozen = scrape(node)["peer53_gc_frozen_objects"][0][1]
        assert frozen - frozen_at_start > 3 * RECORDS
    finally:
        assert node.stop() == 0
