"""Property-based requests generated from the OpenAPI document, against a real node.

Every generated request must get a documented status code, a body that matches its
schema, and never a 5xx (schemathesis' checks). The check that any schema-valid request is
accepted is left out: the API validates more than the schema can say (a string must also
be a DNS name). Token revocation is left out because force=true would revoke the admin
token the run itself uses. Afterwards the node must have logged no traceback.
"""

import subprocess
import sys
from pathlib import Path

from tests.nodeproc import NodeProcess

SEED = 53
EXAMPLES = 8


def test_generated_requests_get_documented_answers(tmp_path: Path) -> None:
    node = NodeProcess.init(tmp_path / "data").start()
    try:
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{node.api_url}/api/v1/openapi.json",
                "--header",
                f"Authorization: Bearer {node.token}",
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--exclude-path",
                "/api/v1/tokens/{token_id}",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                str(SEED),
                "--workers",
                "1",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert "Authentication failed" not in result.stdout
    finally:
        assert node.stop() == 0
    assert "Traceback" not in node.log.read_text(), node.log.read_text()
