"""mongoose (npm) runs transactions against the server: ``connection.transaction()``
commits atomically, an error in the callback aborts, and the explicit session API
(start / abort / commit) works. mongoose comes from README's test command
(``npm install --no-save --prefix tests/node mongosh mongodb mongoose``)."""
import json
import os
import shutil
import subprocess

import pytest

NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node")
INSTALL = "npm install --no-save --prefix tests/node mongosh mongodb mongoose"


def test_mongoose_transactions(server):
    node = shutil.which("node")
    assert node, "node is not installed (apt-get install nodejs)"
    if not os.path.exists(os.path.join(NODE_DIR, "node_modules", "mongoose", "package.json")):
        pytest.fail(f"mongoose is missing: run `{INSTALL}` from the repository root first", pytrace=False)
    p = subprocess.run([node, os.path.join(NODE_DIR, "mongoose_txn.js"), server.url], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = [line for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, p.stdout + p.stderr
    r = json.loads(lines[-1][len("RESULT "):])
    assert r["insideAnn"] == 70 and r["outsideAnn"] == 100        # isolation while open
    assert r["afterCommit"] == [70, 80] and r["audits"] == 1       # atomic commit
    assert r["abortedWith"] == "insufficient funds"
    assert r["afterAbort"] == [70, 80] and r["auditsAfterAbort"] == 1
    assert r["ids"] == [1, 2, 4]
