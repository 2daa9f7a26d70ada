"""Invites through the API and peer53ctl: minted, listed, revoked, replicated as records."""

import json
import subprocess
import time

from protocol.invites import read_invite
from tests.nodeproc import NodeProcess
from tests.test_ctl import CTL, ctl


def test_invite_lifecycle(node: NodeProcess) -> None:
    with node.client() as c:
        status = c.get("/api/v1/cluster").json()
        made = c.post("/api/v1/invites", json={"ttl": 600})
        assert made.status_code == 201, made.text
        doc = made.json()
        invite = read_invite(doc["token"], int(time.time()))
        assert invite.jti == doc["jti"]
        assert invite.cluster == status["cluster"]["id"]
        assert invite.issuer == status["node"]["id"]
        assert invite.ca_pin.startswith("sha256:")
        assert doc["status"] == "open" and doc["used_by"] is None
        listed = c.get("/api/v1/invites").json()["invites"]
        assert any(i["jti"] == doc["jti"] and i["status"] == "open" for i in listed)
        cluster = c.get("/api/v1/cluster").json()["invites"]
        assert any(i["jti"] == doc["jti"] for i in cluster)
        assert doc["token"] not in c.get("/api/v1/invites").text
        assert c.delete(f"/api/v1/invites/{doc['jti']}").status_code == 204
        again = c.delete(f"/api/v1/invites/{doc['jti']}")
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_open"
        assert c.get(f"/api/v1/invites/{doc['jti']}").json()["status"] == "revoked"
        assert c.post("/api/v1/invites", json={"ttl": 0}).status_code == 400
        assert c.post("/api/v1/invites", json={"ttl": 3600, "x": 1}).status_code == 400
        assert c.delete("/api/v1/invites/nope").status_code == 404


def test_ctl_invite_create_prints_the_token_alone(node: NodeProcess) -> None:
    result = ctl(node, "invite", "create", "--ttl", "15m")
    assert result.stdout.count("\n") == 1
    invite = read_invite(result.stdout.strip(), int(time.time()))
    assert 14 * 60 <= invite.expires - int(time.time()) <= 15 * 60
    listed = ctl(node, "invite", "list").stdout
    assert invite.jti in listed and "open" in listed
    ctl(node, "invite", "revoke", invite.jti)
    doc = json.loads(ctl(node, "--json", "invite", "list").stdout)
    assert next(i for i in doc["invites"] if i["jti"] == invite.jti)["status"] == "revoked"


def test_readers_cannot_mint_invites(node: NodeProcess) -> None:
    with node.client() as c:
        reader = c.post("/api/v1/tokens", json={"name": "r", "role": "reader"}).json()["token"]
    env = {**node.env(), "PEER53_TOKEN": reader}
    denied = subprocess.run([CTL, "invite", "create"], capture_output=True, text=True, env=env)
    assert denied.returncode == 1 and "forbidden" in denied.stderr
