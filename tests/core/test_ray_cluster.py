"""executor=ray against a cluster started apart (``ray start --head``): Ray >= 2.59 starts it
with token authentication, which the driver must send; Ray's own log lines stay off the
terminal; an address where nothing listens is one line at once (Ray would retry for minutes)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from robotcl.cli import main
from robotcl.study.ray_executor import connection_error, prepare_environment, token_at_hand

RAY_BIN = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_token_at_hand_turns_token_mode_on_unless_the_user_chose(tmp_path):
    home = tmp_path / "home"
    assert token_at_hand({"HOME": str(home)}) is None
    environ = {"HOME": str(home)}
    prepare_environment(environ)
    assert "RAY_AUTH_MODE" not in environ  # no token: left as it was
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("secret")
    environ = {"HOME": str(home)}
    prepare_environment(environ)
    assert environ["RAY_AUTH_MODE"] == "token"
    environ = {"HOME": str(home), "RAY_AUTH_MODE": "disabled"}
    prepare_environment(environ)
    assert environ["RAY_AUTH_MODE"] == "disabled"
    environ = {"HOME": str(tmp_path / "none"), "RAY_AUTH_TOKEN": "secret"}
    prepare_environment(environ)
    assert environ["RAY_AUTH_MODE"] == "token"
    refused = connection_error(ConnectionError("Failed to connect"), {"HOME": "/nowhere"})
    assert "set RAY_AUTH_TOKEN to the output of `ray get-auth-token`" in refused


def test_an_address_where_nothing_listens_is_one_line_and_writes_nothing(tiny, tmp_path, capsys):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{free_port()}"
    grid = ["strategies=[finetune]", "seeds=1", "executor=ray", f"ray_address={address}"]
    assert main(["compare", "quick", *tiny, *grid]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"robotcl: error: ray_address='{address}': nothing answers at {address} (Connection "
        "refused); start the cluster first"
    ]
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(not RAY_BIN.is_file(), reason="needs Ray (robotcl[ray])")
def test_a_cluster_started_apart_with_token_authentication_runs_the_grid(tiny, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["HOME"] = str(tmp_path / "home")  # the cluster writes its token there
    generate = [str(RAY_BIN), "get-auth-token", "--generate"]  # as a local ray.init() does
    subprocess.run(generate, env=env, capture_output=True, timeout=60, check=True)
    port = free_port()
    start = [str(RAY_BIN), "start", "--head", f"--port={port}", "--num-cpus=1"]
    start += ["--include-dashboard=false", "--disable-usage-stats"]
    started = subprocess.run(start, env=env, capture_output=True, text=True, timeout=120)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        assert "Token authentication is enabled" in started.stderr + started.stdout
        address = re.search(r"--address='([^']+)'", started.stdout + started.stderr).group(1)
        grid = ["strategies=[finetune]", "seeds=1", "executor=ray", f"ray_address={address}"]
        command = [str(RAY_BIN.parent / "robotcl"), "compare", "quick", *tiny, *grid]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run([str(RAY_BIN), "stop", "--force"], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr[-2000:]
    comparison = next((tmp_path / "runs").rglob("comparison.json"))
    assert json.loads(comparison.read_text())["runs"][0]["status"] == "done"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    noise = [line for line in lines if not line.startswith(("robotcl", "grid"))]
    assert noise == [], noise  # no Ray log line, no authentication notice
