"""``peer53 leave``: a running node leaves its cluster, for ever.

It asks the node's own API (found through DIR/listen.json) to write its departure, and
waits until every other active member has applied it, so that the departure and the
node's last changes reach them before the operator stops the node.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from node.bootstrap import ADMIN_TOKEN_FILE
from node.config import LISTEN_FILE


class LeaveError(RuntimeError):
    pass


@dataclass(frozen=True)
class Left:
    name: str
    others: int
    acknowledged: int


def _api_url(data_dir: Path) -> str:
    try:
        bound = json.loads((data_dir / LISTEN_FILE).read_text())
        return f"http://{bound['api']}"
    except (OSError, ValueError, KeyError, TypeError):
        raise LeaveError(
            f"{data_dir} has no running node (no {LISTEN_FILE}): start it with "
            f"'peer53 run --data-dir {data_dir}', then leave"
        ) from None


def _token(data_dir: Path, token: str | None) -> str:
    if token:
        return token
    if os.environ.get("PEER53_TOKEN"):
        return os.environ["PEER53_TOKEN"]
    try:
        return (data_dir / ADMIN_TOKEN_FILE).read_text().strip()
    except OSError:
        raise LeaveError(
            "an admin token is needed: pass --token, set PEER53_TOKEN, or keep "
            f"{data_dir / ADMIN_TOKEN_FILE}"
        ) from None


def _checked(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        message = error.get("message") if isinstance(error, dict) else None
        raise LeaveError(message or f"the node answered HTTP {response.status_code}")
    if not isinstance(body, dict):
        raise LeaveError("the node answered with something other than a JSON object")
    return body


def leave_cluster(data_dir: Path, token: str | None, timeout: float) -> Left:
    url = _api_url(data_dir)
    headers = {"Authorization": f"Bearer {_token(data_dir, token)}"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=timeout + 10) as api:
            members = _checked(api.get("/api/v1/members")).get("members")
            if not isinstance(members, list):
                raise LeaveError("the node's member list is not a list")
            active = sum(1 for m in members if m.get("membership") == "active")
            params = {"wait": str(active), "timeout": str(timeout)}
            body = _checked(api.post("/api/v1/cluster/leave", params=params))
    except httpx.HTTPError as exc:
        raise LeaveError(f"cannot reach the node's API at {url}: {exc}") from None
    applied = body.get("applied")
    return Left(
        name=str(body.get("name", "")),
        others=active - 1,
        acknowledged=(applied if isinstance(applied, int) else 1) - 1,
    )
