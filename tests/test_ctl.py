"""peer53ctl as an operator runs it: the real binary against a real node, checked with dig."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nodeproc import NodeProcess

CTL = str(Path(sys.executable).parent / "peer53ctl")
EXAMPLES = Path(__file__).parent.parent / "examples"


def ctl(node: NodeProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [CTL, *args], capture_output=True, text=True, env=node.env(), timeout=60
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def dig(node: NodeProcess, tool: str, *args: str) -> str:
    result = subprocess.run(
        [tool, "@127.0.0.1", "-p", str(node.dns_port), "+norec", "+short", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_zone_and_rrset_commands_change_what_dig_sees(node: NodeProcess) -> None:
    ctl(node, "zone", "create", "ctl.test", "--ns", "ns1.ctl.test", "--ns", "ns2.ctl.test")
    assert "ctl.test." in ctl(node, "zone", "list").stdout
    ctl(node, "rrset", "set", "ctl.test", "www", "A", "300", "192.0.2.44", "192.0.2.45")
    assert sorted(dig(node, "dig", "www.ctl.test", "A").split()) == ["192.0.2.44", "192.0.2.45"]
    assert sorted(dig(node, "kdig", "www.ctl.test", "A").split()) == ["192.0.2.44", "192.0.2.45"]
    ctl(node, "rrset", "set", "ctl.test", "@", "MX", "3600", "10 mail")
    assert dig(node, "dig", "ctl.test", "MX").strip() == "10 mail.ctl.test."
    listed = json.loads(ctl(node, "--json", "rrset", "list", "ctl.test").stdout)
    assert {
        "name": "www.ctl.test.",
        "type": "A",
        "ttl": 300,
        "records": ["192.0.2.44", "192.0.2.45"],
    } in listed["rrsets"]
    table = ctl(node, "rrset", "list", "ctl.test").stdout
    assert "www.ctl.test." in table and "192.0.2.44" in table
    ctl(node, "rrset", "delete", "ctl.test", "www", "A")
    assert dig(node, "dig", "www.ctl.test", "A") == ""
    ctl(node, "zone", "delete", "ctl.test")
    assert "ctl.test." not in ctl(node, "zone", "list").stdout


def test_import_shows_progress_and_export_round_trips(node: NodeProcess, tmp_path: Path) -> None:
    outside = ctl(
        node, "zone", "import", "example.org", str(EXAMPLES / "example.com.zone"), check=False
    )
    assert outside.returncode == 1  # the file's names are example.com, outside example.org
    last = outside.stderr.strip().splitlines()[-1]
    assert last.startswith("peer53ctl: error: zonefile_error") and "outside the zone" in last
    lines = [f"h{i} 300 IN A 10.0.{i // 250}.{i % 250}" for i in range(3000)]
    zone = tmp_path / "bulk.test.zone"
    zone.write_text(
        "$ORIGIN bulk.test.\n@ 3600 IN SOA ns1 h 77 1 1 1 1\n@ 3600 IN NS ns1\n"
        + "\n".join(lines)
        + "\n"
    )
    result = ctl(node, "zone", "import", "bulk.test", str(zone))
    assert "3002" in result.stderr or "3002" in result.stdout
    assert dig(node, "dig", "h2999.bulk.test", "A").strip() == "10.0.11.249"
    assert dig(node, "dig", "bulk.test", "SOA").split()[2] == "77"
    exported = ctl(node, "zone", "export", "bulk.test").stdout
    assert exported.count(" A ") == 3000
    status = ctl(node, "status").stdout
    assert "self" in status and "active" in status
    assert json.loads(ctl(node, "status", "--json").stdout)["merkle_root"]


@pytest.mark.parametrize(
    ("args", "env_token", "message"),
    [
        (("zone", "delete", "missing.test"), None, "not_found"),
        (("zone", "list"), "p53.0000000000000000." + "A" * 43, "unauthorized"),
        (("--api", "http://127.0.0.1:1", "zone", "list"), None, "cannot reach node API"),
        (("rrset", "set", "x.test", "www", "A", "60", "not-an-ip"), None, "error"),
    ],
)
def test_errors_are_one_line_and_non_zero(
    node: NodeProcess, args: tuple[str, ...], env_token: str | None, message: str
) -> None:
    env = node.env()
    if env_token is not None:
        env["PEER53_TOKEN"] = env_token
    result = subprocess.run([CTL, *args], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode != 0
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("peer53ctl: error:") and message in line, result.stderr
    assert "Traceback" not in result.stderr


def test_token_create_list_revoke(node: NodeProcess) -> None:
    secret = ctl(node, "token", "create", "--role", "reader", "--name", "ci reader").stdout
    [line] = secret.splitlines()
    assert line.startswith("p53.")
    token_id = line.split(".")[1]
    listed = ctl(node, "token", "list").stdout
    assert token_id in listed and "ci reader" in listed and line not in listed
    reader_env = {**node.env(), "PEER53_TOKEN": line}
    ok = subprocess.run([CTL, "zone", "list"], capture_output=True, text=True, env=reader_env)
    assert ok.returncode == 0, ok.stderr
    denied = subprocess.run(
        [CTL, "zone", "create", "denied.test"], capture_output=True, text=True, env=reader_env
    )
    assert denied.returncode == 1 and "forbidden" in denied.stderr
    editor = ctl(
        node, "--json", "token", "create", "--role", "editor", "--name", "e", "--zone", "a.test"
    ).stdout
    assert json.loads(editor)["zones"] == ["a.test."]
    assert "revoked" in ctl(node, "token", "revoke", token_id).stdout
    after = subprocess.run([CTL, "zone", "list"], capture_output=True, text=True, env=reader_env)
    assert after.returncode == 1 and "unauthorized" in after.stderr
    assert "revoked" in ctl(node, "token", "list").stdout
