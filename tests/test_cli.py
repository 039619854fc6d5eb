"""The ``pushserver`` command as an operator runs it: migrate, make a key, serve, call the API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pushserver", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PUSH_SERVER_")}
    return clean | {"PUSH_SERVER_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    assert run(env, "db", "upgrade").returncode == 0
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pushserver", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base_url}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not come up within 30 s")
        yield base_url, env
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
        assert "listening on " + base_url in output


def test_serve_answers_status_with_a_key_made_by_the_cli(
    server: tuple[str, dict[str, str]],
) -> None:
    base_url, env = server
    created = run(env, "apikey", "create", "--role", "admin")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("psk_")

    answer = httpx.get(
        f"{base_url}/push/service/status", headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200
    status = answer.json()["responseObject"]
    assert status["applicationName"] == "push-server"
    assert status["timestamp"].endswith("Z")

    refused = httpx.get(f"{base_url}/push/service/status")
    assert refused.status_code == 401
    assert refused.json()["responseObject"]["code"] == "ERROR_UNAUTHORIZED"


def test_keys_are_listed_without_their_secret_and_can_be_revoked(
    server: tuple[str, dict[str, str]],
) -> None:
    base_url, env = server
    key = run(env, "apikey", "create", "--role", "sender", "--name", "billing").stdout.strip()

    listing = run(env, "apikey", "list")
    assert "billing" in listing.stdout and "sender" in listing.stdout
    assert key not in listing.stdout and key[8:] not in listing.stdout

    revoked = run(env, "apikey", "revoke", "1")
    assert revoked.returncode == 0, revoked.stderr
    answer = httpx.get(
        f"{base_url}/push/service/status", headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 401


def test_only_the_hash_of_a_key_is_stored(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "db", "upgrade").returncode == 0
    key = run(env, "apikey", "create", "--role", "registrar").stdout.strip()
    database = (tmp_path / "data" / "pushserver.db").read_bytes()
    assert key.encode() not in database
    assert key[8:].encode() not in database


def test_unknown_role_is_refused(env: dict[str, str]) -> None:
    assert run(env, "db", "upgrade").returncode == 0
    result = run(env, "apikey", "create", "--role", "root")
    assert result.returncode != 0
    assert "root" in result.stderr


def test_serve_refuses_an_unmigrated_database_naming_the_command(env: dict[str, str]) -> None:
    result = run(env, "serve", "--port", str(free_port()))
    assert result.returncode != 0
    assert "pushserver db upgrade" in result.stderr


def test_serve_refuses_disabled_auth_on_a_public_address(env: dict[str, str]) -> None:
    assert run(env, "db", "upgrade").returncode == 0
    result = run(
        env | {"PUSH_SERVER_AUTH_DISABLED": "true"}, "serve", "--host", "0.0.0.0", "--port", "1"
    )
    assert result.returncode == 2
    assert "authentication is disabled" in result.stderr
