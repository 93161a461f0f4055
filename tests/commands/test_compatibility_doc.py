"""docs/compatibility.md and the server agree: every command listed answers as documented
(supported/partial ones exist, 238/59/251 ones fail with that code), and every command the
server implements or refuses with 238 is listed."""
import os
import re

from mongolake.commands.registry import load_all
from mongolake.commands.unsupported import NOT_IMPLEMENTED
from tests.commands.rawmsg import RawMsg

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs",
                   "compatibility.md")


def _command_rows() -> dict[str, str]:
    text = open(DOC, encoding="utf-8").read()
    section = text.split("## Commands", 1)[1].split("## Known differences", 1)[0]
    out: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        status = cells[1]
        for name in re.findall(r"`([^`]+)`", cells[0]):
            assert name not in out, f"{name} listed twice"
            out[name] = status
    return out


ROWS = _command_rows()


def test_every_command_is_documented():
    registry = load_all()
    missing = sorted(n for n in registry if n not in ROWS)
    assert not missing, f"implemented but not in docs/compatibility.md: {missing}"
    for n in registry:
        assert ROWS[n] in ("supported", "partial") or n in ("commitTransaction", "abortTransaction"), n
    missing = sorted(n for n in NOT_IMPLEMENTED if ROWS.get(n) != "238")
    assert not missing, f"refused with 238 but not documented so: {missing}"


def test_documented_status_matches_the_server(server):
    registry = load_all()
    wrong = []
    with RawMsg(server.port) as raw:
        for name, status in sorted(ROWS.items()):
            if status in ("supported", "partial"):
                if name not in registry:
                    wrong.append(f"{name}: documented {status}, not implemented")
                continue
            r = raw.cmd({name: 1, "$db": "admin"})
            if r["ok"] != 0.0 or r["code"] != int(status) or (status == "238" and not r["errmsg"].startswith(name)):
                wrong.append(f"{name}: documented {status}, answered {r}")
    assert not wrong, "\n".join(wrong)
    assert sum(1 for s in ROWS.values() if s == "238") >= 60
