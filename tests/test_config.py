"""peer53.toml: defaults, overrides, validation, and how [dns] reaches the answer code."""

from pathlib import Path

import pytest

from node.config import ConfigError, NodeConfig, load_config, parse_address, write_config
from node.runtime import answer_config


def _write(tmp_path: Path, extra: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    write_config(tmp_path, NodeConfig(name="n1"))
    with (tmp_path / "peer53.toml").open("a") as f:
        f.write(extra)
    return tmp_path


def test_defaults_round_trip(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, ""))
    assert config.name == "n1"
    assert str(config.addresses()["dns"]) == "127.0.0.1:5353"
    assert str(config.addresses()["api"]) == "127.0.0.1:8053"
    assert config.dns.udp_payload == 1232


def test_ipv6_and_overrides() -> None:
    assert str(parse_address("[::1]:53")) == "[::1]:53"
    config = NodeConfig(name="n").with_listen(dns="[::1]:0", api=None)
    assert config.listen.dns == "[::1]:0" and config.listen.api == "127.0.0.1:8053"
    with pytest.raises(ConfigError, match="--api"):
        NodeConfig(name="n").with_listen(api="nowhere")


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1",
        ":53",
        "127.0.0.1:99999",
        "example.com:53",
        "[::1]:x",
        "::1:7053",
        "[127.0.0.1]:53",
        "127.0.0.1:\u0665\u0663",
    ],
)
def test_bad_addresses(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_address(text)


def test_chaos_identity_defaults_to_the_node_name_and_can_be_hidden(tmp_path: Path) -> None:
    shown = load_config(_write(tmp_path / "a", ""))
    hidden = load_config(
        _write(tmp_path / "b", '[dns]\nid_server = ""\nhostname_bind = ""\nversion_bind = ""\n')
    )
    custom = load_config(_write(tmp_path / "c", '[dns]\nversion_bind = "secret"\nnsid = "x1"\n'))

    def identity(config: NodeConfig) -> tuple[str | None, str | None, str | None, bytes | None]:
        answer = answer_config(config)
        ident = answer.identity
        return ident.id_server, ident.hostname_bind, ident.version_bind, answer.nsid

    assert identity(shown)[:2] == ("n1", "n1")
    assert identity(shown)[2] is not None and identity(shown)[3] is None
    assert identity(hidden) == (None, None, None, None)
    assert identity(custom)[2:] == ("secret", b"x1")


def test_advertised_peer_address() -> None:
    plain = NodeConfig(name="n")
    assert plain.advertised_peer() == "127.0.0.1:7053"
    wildcard = NodeConfig(name="n").with_listen(peer="0.0.0.0:7053")
    with pytest.raises(ConfigError, match="--advertise"):
        wildcard.advertised_peer()
    assert NodeConfig(name="n").with_listen(peer="127.0.0.1:0").advertised_peer(4242) == (
        "127.0.0.1:4242"
    )
    told = wildcard.with_listen(advertise="192.0.2.10:7053")
    assert told.advertised_peer() == "192.0.2.10:7053"
    with pytest.raises(ConfigError, match="advertise"):
        wildcard.with_listen(advertise="0.0.0.0:7053")
    with pytest.raises(ConfigError, match="advertise"):
        wildcard.with_listen(advertise="192.0.2.10:0")


def test_peering_timers_and_dial_overrides(tmp_path: Path) -> None:
    peer = "ab" * 32
    config = load_config(
        _write(
            tmp_path,
            f'[peering]\nheartbeat_ms = 250\n[dial_overrides]\n{peer} = "127.0.0.1:9"\n',
        )
    )
    assert config.peering.heartbeat_ms == 250 and config.peering.dead_after_ms == 5000
    assert config.peering.stale_after_ms == 7 * 24 * 3600 * 1000
    assert config.dial_overrides == {peer: "127.0.0.1:9"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[peering]\nheartbeat_ms = 5\n", "10-600000"),
        ("[peering]\nheartbeat_ms = 6000\n", "dead_after_ms must be longer"),
        ("[peering]\nbackoff_min_ms = 900\nbackoff_max_ms = 800\n", "backoff_max_ms"),
        ('[peering]\nheartbeat_ms = "1s"\n', "expected int"),
        ("[peering]\nbeat = 1\n", "unknown setting"),
        ('[dial_overrides]\nnode = "127.0.0.1:1"\n', "not a node id"),
        (f'[dial_overrides]\n{"ab" * 32} = "here"\n', "HOST:PORT"),
        (f"[dial_overrides]\n{'ab' * 32} = 7\n", "expected"),
        ("[peering]\nstale_after_ms = 5\n", "10-31622400000"),
        ("[peering]\nstale_after_ms = 9000\n", "twice dead_after_ms"),
        ("[peering]\ncompact_interval_ms = 700000\n", "10-600000"),
        ("[dns]\nudp_payload = 100\n", "udp_payload must be 512-4096"),
        ("[dns]\nbogus = 1\n", "unknown setting 'bogus'"),
        ("[weird]\n", r"unknown section \[weird\]"),
        ("[dns]\nnsid = 5\n", "nsid"),
        ("not toml ===\n", "peer53.toml"),
    ],
)
def test_bad_settings(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, extra))


def test_the_example_config_is_the_documented_one_and_loads(tmp_path: Path) -> None:
    root = Path(__file__).parent.parent
    example = (root / "examples" / "peer53.toml").read_text()
    assert (
        f"## A complete example\n\n```toml\n{example}```" in (root / "docs/config.md").read_text()
    )
    (tmp_path / "peer53.toml").write_text(example)
    config = load_config(tmp_path)
    assert config.name == "ns1" and config.peering.stale_after_ms == 604_800_000
    assert len(config.dial_overrides) == 1
