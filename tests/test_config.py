"""Configuration: one option table -> flags, MONGOLAKE_* variables, TOML keys, docs.

Precedence flag > environment > config file > default, and every bad configuration
(unknown key, bad value, bad URL, unreachable S3 endpoint, unwritable path) ends
the command with a clear message and a non-zero exit status.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from pymongo import MongoClient

from mongolake import cli, config
from mongolake.config import OPTIONS, ConfigError
from tests.serverutil import ROOT, ServerProcess

DOCS = os.path.join(ROOT, "docs", "configuration.md")


pytestmark = pytest.mark.usefixtures("restore_logging")


def write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


# -- precedence ------------------------------------------------------------------

def test_precedence_flag_over_env_over_file_over_default(tmp_path):
    cfg_file = write(tmp_path / "m.toml", 'port = 1111\nhost = "0.0.0.0"\nsync = "interval"\n'
                                          '[s3]\nregion = "from-file"\n[log]\nlevel = "debug"\n')
    env = {"MONGOLAKE_PORT": "2222", "MONGOLAKE_HOST": "10.0.0.1", "MONGOLAKE_S3_REGION": "from-env"}
    cfg = config.load({"port": "3333"}, env=env, config_file=cfg_file)
    assert (cfg.port, cfg.sources["port"]) == (3333, "flag")
    assert (cfg.host, cfg.sources["host"]) == ("10.0.0.1", "env")
    assert (cfg.s3_region, cfg.sources["s3_region"]) == ("from-env", "env")
    assert (cfg.sync, cfg.sources["sync"]) == ("interval", "file")
    assert (cfg.log_level, cfg.sources["log_level"]) == ("debug", "file")       # [log] level
    assert (cfg.memtable_size, cfg.sources["memtable_size"]) == (64, "default")
    # the config file itself can come from MONGOLAKE_CONFIG
    cfg = config.load({}, env={"MONGOLAKE_CONFIG": cfg_file})
    assert (cfg.port, cfg.config_file) == (1111, cfg_file)
    # an empty variable counts as unset
    assert config.load({}, env={"MONGOLAKE_PORT": ""}).port == 27017


def test_types_are_converted_from_every_source(tmp_path):
    cfg = config.load({"standalone": True, "flush_interval": "0.5"},
                      env={"MONGOLAKE_CACHE_SIZE": "12", "MONGOLAKE_S3_PATH_STYLE": "TRUE"},
                      config_file=write(tmp_path / "c.toml", "compact_interval = 0\nmetrics_port = 9100\n"))
    assert cfg.standalone is True and cfg.flush_interval == 0.5 and cfg.cache_size == 12
    assert cfg.compact_interval == 0.0 and cfg.metrics_port == 9100 and cfg.s3_path_style == "true"
    assert config.load({}, env={"MONGOLAKE_STANDALONE": "yes"}).standalone is True


def test_storage_options_for_s3_and_secrets_masked():
    cfg = config.load({"storage": "s3://bucket/pre", "s3_endpoint": "http://minio:9000",
                       "s3_secret_access_key": "hush", "s3_access_key_id": "id", "s3_path_style": "false"}, env={})
    opts = cfg.storage_options()
    assert opts["endpoint_url"] == "http://minio:9000" and opts["secret_access_key"] == "hush"
    assert opts["path_style"] is False and opts["max_attempts"] == 8
    assert cfg.as_dict()["s3_secret_access_key"] == "***" and cfg.as_dict()["s3_access_key_id"] == "***"
    assert config.load({}, env={}).storage_options() == {}


def test_server_reports_the_resolved_configuration(tmp_path):
    """A real server: flag, environment and config file each decide one option."""
    cfg_file = write(tmp_path / "m.toml", 'replset = "from-file"\nslow_ms = 5\ncompact_min_files = 7\n')
    srv = ServerProcess(str(tmp_path / "lake"), extra=["--config", cfg_file, "--slow-ms", "9",
                                                       "--s3-session-token=tok3n"],
                        env={"MONGOLAKE_COMPACT_MIN_FILES": "3", "MONGOLAKE_S3_SECRET_ACCESS_KEY": "hush"}).start()
    try:
        with MongoClient(srv.url, directConnection=True) as c:
            opts = c.admin.command("getCmdLineOpts")
            parsed = opts["parsed"]
            hello = c.admin.command("hello")
            profile = c.test.command("profile", -1)
    finally:
        assert srv.stop() == 0
    assert parsed["slow_ms"] == 9 and parsed["compact_min_files"] == 3 and parsed["replset"] == "from-file"
    assert parsed["s3_secret_access_key"] == "***" and parsed["s3_session_token"] == "***"
    assert "--s3-session-token=***" in opts["argv"] and "tok3n" not in str(opts)
    assert hello["setName"] == "from-file" and profile["slowms"] == 9


# -- bad configurations: clear message, non-zero exit -----------------------------

def test_unknown_key_in_config_file(tmp_path, capsys):
    f = write(tmp_path / "m.toml", "prot = 27017\n")
    with pytest.raises(ConfigError, match=r"unknown option 'prot' \(did you mean 'port'\?\)"):
        config.load({}, env={}, config_file=f)
    f2 = write(tmp_path / "g.toml", "[s3]\nendpiont = 'http://x'\n")
    assert cli.main(["serve", "--config", f2, "--storage", str(tmp_path / "lake")]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "unknown option 's3_endpiont'" in err and "s3_endpoint" in err


def test_bad_config_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load({}, env={}, config_file=str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load({}, env={}, config_file=write(tmp_path / "bad.toml", "port = = 1\n"))
    with pytest.raises(ConfigError, match=r"port \(config file .*\): 'x' is not an integer"):
        config.load({}, env={}, config_file=write(tmp_path / "t.toml", 'port = "x"\n'))


@pytest.mark.parametrize("flags,env,message", [
    ({"port": "abc"}, {}, "port (flag --port): 'abc' is not an integer"),
    ({"port": "70000"}, {}, "port (flag --port): 70000 is above the maximum 65535"),
    ({}, {"MONGOLAKE_SYNC": "sometimes"}, "sync (environment MONGOLAKE_SYNC): 'sometimes' is not one of always"),
    ({}, {"MONGOLAKE_STANDALONE": "maybe"}, "standalone (environment MONGOLAKE_STANDALONE): 'maybe' is not a boolean"),
    ({"memtable_size": "0"}, {}, "memtable_size (flag --memtable-size): 0 is below the minimum 1"),
    ({"storage": "ftp://host/x"}, {}, "unsupported URL scheme 'ftp'"),
    ({"storage": "s3://"}, {}, "has no bucket"),
    ({"storage": "s3://Bad_Bucket!/x"}, {}, "is not a valid S3 bucket name"),
    ({"s3_endpoint": "minio:9000"}, {}, "'minio:9000' is not an http(s):// URL"),
    ({"wal_dir": "s3://b/wal"}, {}, "must be a local folder"),
])
def test_bad_values_and_urls(flags, env, message):
    with pytest.raises(ConfigError) as e:
        config.load(flags, env=env)
    assert message in str(e.value)


def test_bad_url_exits_2_from_the_command_line():
    r = subprocess.run([sys.executable, "-m", "mongolake", "serve", "--storage", "gs://bucket/x"],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2
    assert "mongolake: configuration error: storage: unsupported URL scheme 'gs'" in r.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_s3_endpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    t0 = time.monotonic()
    code = cli.main(["serve", "--storage", "s3://bucket/lake", "--s3-endpoint", f"http://127.0.0.1:{_closed_port()}",
                     "--s3-region", "us-east-1", "--wal-dir", str(tmp_path / "wal")])
    err = capsys.readouterr().err
    assert code == 2
    assert "configuration error: cannot use S3 storage s3://bucket/lake (endpoint http://127.0.0.1:" in err
    assert "still failing after 2 attempts" in err
    assert time.monotonic() - t0 < 20


def test_unwritable_paths(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert cli.main(["serve", "--storage", str(blocker / "lake")]) == 2
    err = capsys.readouterr().err
    assert f"storage path '{blocker / 'lake'}' is not writable: Not a directory" in err
    # /proc refuses new entries even to root
    assert cli.main(["serve", "--storage", str(tmp_path / "lake"), "--wal-dir", "/proc/mongolake-wal"]) == 2
    err = capsys.readouterr().err
    assert "WAL folder (wal_dir) '/proc/mongolake-wal' is not writable" in err
    assert cli.main(["serve", "--storage", str(tmp_path / "lake"), "--log-file", str(blocker / "log")]) == 2
    assert "log_file" in capsys.readouterr().err


def test_port_in_use(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert cli.main(["serve", "--storage", str(tmp_path / "lake"), "--port", str(port)]) == 1
    assert f"mongolake: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    # the store was released: it can be used again
    assert cli.main(["inspect", str(tmp_path / "lake")]) == 0


def test_unknown_flag_and_unknown_env_variable(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["serve", "--no-such-flag"])
    assert e.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    # MONGOLAKE_* variables that name no option are warned about (test suites use some of their own)
    env = {"MONGOLAKE_PROT": "1", "MONGOLAKE_PORT": "1"}
    assert config.unknown_env(env) == ["MONGOLAKE_PROT"]
    assert "did you mean 'MONGOLAKE_PORT'" in config.unknown_env_message("MONGOLAKE_PROT")


# -- one table, no drift ----------------------------------------------------------

def test_every_option_has_a_flag_an_env_variable_and_a_key():
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["serve"].format_help()
    names = set()
    for o in OPTIONS:
        assert o.name not in names
        names.add(o.name)
        assert o.flag in help_text and o.env in help_text
        assert o.env == "MONGOLAKE_" + o.name.upper() and o.flag == "--" + o.name.replace("_", "-")
        if o.default is not None:
            assert config.convert(o, o.default, "default") == o.default


def test_configuration_reference_is_generated_from_the_table():
    with open(DOCS, encoding="utf-8") as f:
        text = f.read()
    start = text.index(config.DOC_BEGIN) + len(config.DOC_BEGIN)
    generated = text[start:text.index(config.DOC_END)]
    assert generated == "\n" + config.render_markdown(), \
        "docs/configuration.md is stale: python -m mongolake.config --update-docs docs/configuration.md"
    for o in OPTIONS:
        assert f"`{o.env}`" in generated
