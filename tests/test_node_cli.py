"""The ``peer53`` command: init output rules, refusals, config errors, binds, signals."""

import json
import signal
import socket
import stat
from pathlib import Path

import pytest

from tests.nodeproc import NodeProcess, peer53


def test_init_prints_only_the_token_on_stdout(tmp_path: Path) -> None:
    result = peer53("init", "--data-dir", str(tmp_path / "d"), "--name", "alpha")
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("p53.")
    assert (tmp_path / "d" / "admin.token").read_text().strip() == lines[0]
    assert "alpha" in result.stderr
    assert stat.S_IMODE((tmp_path / "d" / "node.key").stat().st_mode) == 0o600
    again = peer53("init", "--data-dir", str(tmp_path / "d"), check=False)
    assert again.returncode == 1
    assert again.stdout == ""
    assert "already holds a peer53 node" in again.stderr
    assert (tmp_path / "d" / "admin.token").read_text().strip() == lines[0]


def test_run_without_init_is_a_clear_error(tmp_path: Path) -> None:
    result = peer53("run", "--data-dir", str(tmp_path / "nothing"), check=False)
    assert result.returncode == 1
    assert "peer53 init" in result.stderr and "Traceback" not in result.stderr


def test_bad_config_is_refused(tmp_path: Path) -> None:
    """One case end to end; test_config checks each message."""
    data = tmp_path / "d"
    peer53("init", "--data-dir", str(data))
    with (data / "peer53.toml").open("a") as f:
        f.write("[dns]\nudp_payload = 100\n")
    result = peer53("run", "--data-dir", str(data), check=False)
    assert result.returncode == 1
    assert "udp_payload must be 512-4096" in result.stderr and "Traceback" not in result.stderr


def test_bad_listen_flag_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "d"
    result = peer53("init", "--data-dir", str(data), "--dns", "localhost:53", check=False)
    assert result.returncode == 1 and "not an IP address" in result.stderr
    assert not (data / "peer53.db").exists()


def test_a_wildcard_peer_address_needs_advertise(tmp_path: Path) -> None:
    data = tmp_path / "d"
    peer53("init", "--data-dir", str(data), "--dns", "127.0.0.1:0", "--api", "127.0.0.1:0")
    result = peer53("run", "--data-dir", str(data), "--peer", "0.0.0.0:0", check=False)
    assert result.returncode == 1 and "--advertise" in result.stderr
    assert "Traceback" not in result.stderr and not (data / "listen.json").exists()


def test_busy_ports_name_the_listener(tmp_path: Path) -> None:
    data = tmp_path / "d"
    peer53("init", "--data-dir", str(data), "--dns", "127.0.0.1:0", "--api", "127.0.0.1:0")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = peer53("run", "--data-dir", str(data), "--api", f"127.0.0.1:{port}", check=False)
    assert result.returncode == 1
    assert f"cannot listen for the API on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_stop_the_node_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    node = NodeProcess.init(tmp_path / "d").start()
    bound = json.loads((node.data_dir / "listen.json").read_text())
    assert set(bound) == {"dns", "api", "peer"}
    assert node.stop(sig) == 0
    assert not (node.data_dir / "listen.json").exists()
    assert "stopped" in node.log.read_text()


def test_wildcard_peer_needs_advertise(tmp_path: Path) -> None:
    data = tmp_path / "d"
    refused = peer53("init", "--data-dir", str(data), "--peer", "0.0.0.0:7053", check=False)
    assert refused.returncode == 1 and "--advertise" in refused.stderr
    assert not data.exists() or not any(data.iterdir())  # nothing was created
    peer53(
        "init", "--data-dir", str(data), "--peer", "0.0.0.0:7053", "--advertise", "127.0.0.9:7053"
    )
    assert 'advertise = "127.0.0.9:7053"' in (data / "peer53.toml").read_text()
