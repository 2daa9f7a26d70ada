from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.nodeproc import NodeProcess

SHARED_TCP_IDLE_TIMEOUT = 2


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One running node shared by the integration tests; tests use distinct zones."""
    proc = NodeProcess.init(Path(tmp_path_factory.mktemp("shared-node")) / "data")
    with (proc.data_dir / "peer53.toml").open("a") as config:
        config.write(f"\n[dns]\ntcp_idle_timeout = {SHARED_TCP_IDLE_TIMEOUT}\n")
    proc.start()
    try:
        yield proc
    finally:
        assert proc.stop() == 0, proc.log.read_text()


STALE_AFTER_MS = 6000


@pytest.fixture(scope="session")
def cluster3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three nodes formed by invites and joins, every link through a cuttable proxy.

    Tests share it: each uses its own zones, and any test that partitions heals before
    it ends (``healed``). A member cut off for STALE_AFTER_MS goes stale."""
    cluster = Cluster.form(
        Path(tmp_path_factory.mktemp("cluster3")),
        3,
        proxied=True,
        timers=f"stale_after_ms = {STALE_AFTER_MS}",
    )
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def cluster5(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Five nodes formed by invites and joins, shared by the modules that stop, restore,
    damage, remove or add nodes. They run in file order and each leaves at least three
    nodes running and converged: recovery (adds a sixth), membership (one is removed and
    one leaves), repair."""
    cluster = Cluster.form(Path(tmp_path_factory.mktemp("cluster5")), 5)
    try:
        yield cluster
    finally:
        cluster.stop()
