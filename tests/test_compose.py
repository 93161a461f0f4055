"""compose.yaml and the Dockerfile, checked as far as this machine allows (no Docker
here): the YAML parses; the services, ports, volumes, health checks and start order
are the ones the docs promise; every MONGOLAKE_* setting is a valid option value;
every command the containers run exists in the CLI; every file the Dockerfile copies
exists."""
from __future__ import annotations

import os
import re
import shlex

import yaml

from mongolake import cli, config
from tests.serverutil import ROOT


def load_compose() -> dict:
    with open(os.path.join(ROOT, "compose.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def expand(value: str) -> str:
    """Compose's ${VAR:-default} with the default (nothing set in the test environment)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    with open(os.path.join(ROOT, "Dockerfile"), encoding="utf-8") as f:
        text = re.sub(r"\\\n", " ", f.read())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def exec_form(args: str) -> list[str]:
    import json
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def assert_cli_accepts(argv: list[str]) -> None:
    assert argv[0] == "mongolake", argv
    args = cli.build_parser().parse_args(argv[1:])      # SystemExit on an unknown command or flag
    assert args.cmd in ("serve", "ping", "inspect", "check", "compact", "vacuum", "import", "export")


def test_services_ports_volumes_and_start_order():
    c = load_compose()
    svc = c["services"]
    assert set(svc) == {"minio", "createbucket", "mongolake"}
    ml = svc["mongolake"]
    assert ml["build"] == "." and os.path.exists(os.path.join(ROOT, "Dockerfile"))
    assert "27017:27017" in ml["ports"] and "9216:9216" in ml["ports"]
    assert ml["depends_on"]["createbucket"]["condition"] == "service_completed_successfully"
    assert svc["createbucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert svc["createbucket"]["image"].startswith("minio/mc")
    assert svc["minio"]["image"].startswith("minio/minio")
    assert svc["minio"]["healthcheck"]["test"][:2] == ["CMD", "mc"]
    assert "9000:9000" in svc["minio"]["ports"]
    # the WAL on a named volume, at the folder MongoLake is told to use
    env = {k: expand(v) for k, v in ml["environment"].items()}
    wal_mounts = [v.split(":") for v in ml["volumes"]]
    assert [m for m in wal_mounts if m[1] == env["MONGOLAKE_WAL_DIR"]], wal_mounts
    for name, _target in wal_mounts:
        assert name in c["volumes"]                       # named, not a host path
    assert ml["stop_signal"] == "SIGTERM" and ml["stop_grace_period"]


def test_mongolake_settings_are_valid_and_point_at_the_bucket():
    c = load_compose()
    ml, mc = c["services"]["mongolake"], c["services"]["createbucket"]
    env = {k: expand(v) for k, v in ml["environment"].items()}
    unknown = [k for k in env if k.startswith("MONGOLAKE_") and k not in {o.env for o in config.OPTIONS}]
    assert not unknown
    cfg = config.load({}, env=env)                        # raises ConfigError on any bad value
    assert cfg.host == "0.0.0.0" and cfg.port == 27017 and cfg.metrics_port == 9216
    assert cfg.storage.startswith("s3://")
    bucket = cfg.storage[len("s3://"):].split("/")[0]
    script = " ".join(mc["command"]) if isinstance(mc["command"], list) else mc["command"]
    assert re.search(rf"mc mb (--ignore-existing )?\w+/{bucket}\b", script)
    assert cfg.s3_endpoint == "http://minio:9000"
    # the credentials MinIO is started with are the ones MongoLake uses
    minio_env = {k: expand(v) for k, v in c["services"]["minio"]["environment"].items()}
    assert env["AWS_ACCESS_KEY_ID"] == minio_env["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == minio_env["MINIO_ROOT_PASSWORD"]
    assert_cli_accepts(["mongolake", *ml["command"]])
    hc = ml["healthcheck"]["test"]
    assert hc[0] == "CMD"
    assert_cli_accepts(hc[1:])


def test_dockerfile_copies_existing_files_and_runs_existing_commands():
    instr = dockerfile()
    kinds = [k for k, _ in instr]
    assert kinds[0] == "FROM" and "python:3.11" in instr[0][1]
    for kind, args in instr:
        if kind == "COPY":
            *sources, _dest = shlex.split(args)
            for s in sources:
                assert os.path.exists(os.path.join(ROOT, s)), f"COPY {s}: no such file in the repository"
        if kind == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", args):
                if key.startswith("MONGOLAKE_"):
                    opt = next(o for o in config.OPTIONS if o.env == key)
                    config.convert(opt, value, "Dockerfile")
    entry = exec_form(dict(instr)["ENTRYPOINT"])
    cmd = exec_form(dict(instr)["CMD"])
    assert_cli_accepts(entry + cmd)
    health = dict(instr)["HEALTHCHECK"]
    assert_cli_accepts(exec_form(health.split("CMD", 1)[1].strip()))
    assert "27017" in dict(instr)["EXPOSE"].split()
    # `pip install .` installs the packages the image copies and the `mongolake` script
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        import tomllib
        project = tomllib.load(f)
    assert project["project"]["scripts"]["mongolake"] == "mongolake.cli:main"
    assert set(project["tool"]["setuptools"]["packages"]["find"]["include"]) >= {"mongolake*", "wire*"}
    # nothing the image needs is excluded from the build context
    with open(os.path.join(ROOT, ".dockerignore"), encoding="utf-8") as f:
        ignored = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    assert not ignored & {"mongolake", "wire", "pyproject.toml", "README.md"}
