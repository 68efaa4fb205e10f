"""API keys: stored hashed, shown once, scoped, revocable; the CLI around them."""

from __future__ import annotations

import hashlib
import json

import pytest
import typer
from server_helpers import rows
from typer.testing import CliRunner

from journeylens.cli_server import register
from journeylens.errors import UnusableInputError
from journeylens.keys import KeyRing, UnknownKeyError, create_key, list_keys, parse_key, revoke_key
from journeylens.store import Workspace

runner = CliRunner()


def cli(*args):
    app = typer.Typer()
    register(app)
    return runner.invoke(app, [str(a) for a in args])


def test_a_key_is_stored_only_as_the_hash_of_its_secret(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        new = create_key(ws, "ingest", "website")
        prefix, secret = parse_key(new.key)
        assert len(secret) == 32 and new.key.startswith(f"jl_{prefix}_")
        stored = ws.con.con.execute(
            "SELECT prefix, name, scope, key_hash, revoked_at FROM api_keys"
        ).fetchall()
        assert stored == [(prefix, "website", "ingest", hashlib.sha256(secret).hexdigest(), None)]
        table_text = json.dumps(
            [list(map(str, r)) for r in ws.con.con.execute("SELECT * FROM api_keys").fetchall()]
        )
        assert new.key not in table_text and new.key.split("_", 2)[2] not in table_text


def test_the_ring_accepts_only_live_well_formed_keys(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        read = create_key(ws, "read")
        admin = create_key(ws, "admin")
        ring = KeyRing.load(ws)
        assert ring.authenticate(read.key).scope == "read"
        assert ring.authenticate(admin.key).allows("ingest") and ring.authenticate(admin.key).allows("read")
        assert not ring.authenticate(read.key).allows("ingest")
        forged = read.key[:-4] + ("AAAA" if not read.key.endswith("AAAA") else "BBBB")
        for bad in (
            forged,
            "",
            "jl_",
            read.key + "x",
            "Bearer " + read.key,
            admin.key.replace(admin.info.prefix, read.info.prefix),
        ):
            assert ring.authenticate(bad) is None, bad
        revoke_key(ws, read.info.prefix)
        assert KeyRing.load(ws).authenticate(read.key) is None
        assert KeyRing.load(ws).active == 1


def test_scopes_and_prefixes_are_checked(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        with pytest.raises(
            UnusableInputError, match="scope 'write' is unknown; expected one of ingest, read, admin"
        ):
            create_key(ws, "write")
        with pytest.raises(UnknownKeyError, match="no API key has the prefix 'deadbeef'"):
            revoke_key(ws, "deadbeef")
        assert list_keys(ws) == []


def test_cli_create_list_revoke(tmp_path):
    ws = tmp_path / "ws"
    made = cli("keys", "create", "--scope", "read", "--name", "dashboard", "-w", ws)
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    prefix, _ = parse_key(key)
    listed = cli("keys", "list", "-w", ws, "--format", "json")
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.stdout)
    assert (entry["prefix"], entry["name"], entry["scope"], entry["revoked"]) == (
        prefix,
        "dashboard",
        "read",
        None,
    )
    assert key not in listed.output

    revoked = cli("keys", "revoke", prefix, "-w", ws)
    assert revoked.exit_code == 0 and f"revoked read key {prefix} (dashboard)" in revoked.output
    assert rows(ws, "SELECT revoked_at IS NOT NULL FROM api_keys") == [(True,)]

    bad = cli("keys", "create", "--scope", "owner", "-w", ws)
    assert bad.exit_code == 2 and "scope 'owner' is unknown" in bad.output
    unknown = cli("keys", "revoke", "00000000", "-w", ws)
    assert unknown.exit_code == 2 and "no API key has the prefix '00000000'" in unknown.output
