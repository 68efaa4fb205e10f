"""API keys for the HTTP server: created once, stored hashed, checked in constant time.

A key looks like ``jl_1a2b3c4d_<43 characters>``: ``jl_``, a public *prefix* of 8 hex digits that names
the key (for lookup, listing and revoking), and a secret of 32 random bytes (base64url). The workspace's
``api_keys`` table keeps the prefix, the scope, a name, the times and the SHA-256 of the 32 secret bytes;
the key itself is shown once, when it is created, and cannot be recovered.

Scopes: ``ingest`` may only send touchpoints, ``read`` may only read, ``admin`` may do everything
(reads, writes, erasures and key management).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import pyarrow as pa

from journeylens.errors import JourneyLensError, UnusableInputError, WorkspaceError

if TYPE_CHECKING:
    from journeylens.store import Workspace

Scope = Literal["ingest", "read", "admin"]
SCOPES: tuple[str, ...] = ("ingest", "read", "admin")
KEYS_TABLE = "api_keys"  # the SQL below names it literally
KEYS_SCHEMA = pa.schema(
    [
        ("prefix", pa.string()),
        ("name", pa.string()),
        ("scope", pa.string()),
        ("key_hash", pa.string()),  # hex SHA-256 of the 32 secret bytes
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("revoked_at", pa.timestamp("us", tz="UTC")),
    ]
)
_KEY = re.compile(r"^jl_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
_SECRET_BYTES = 32


class UnknownKeyError(JourneyLensError):
    """No key has the given prefix."""

    code = "unknown_key"
    exit_code = 2


@dataclass(frozen=True)
class ApiKey:
    """What is known about a key, without its secret."""

    prefix: str
    name: str | None
    scope: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, scope: str) -> bool:
        """Whether this key may do what ``scope`` needs (admin may do everything)."""
        return not self.revoked and (self.scope == "admin" or self.scope == scope)


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``key`` is the secret to hand out, shown this once."""

    key: str
    info: ApiKey


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise UnusableInputError(
            f"scope {scope!r} is unknown; expected one of {', '.join(SCOPES)}", code="bad_scope"
        )
    return scope


def hash_secret(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()


def parse_key(key: str) -> tuple[str, bytes] | None:
    """(prefix, secret bytes) of a well-formed key, else None."""
    match = _KEY.match(key.strip())
    if match is None:
        return None
    try:
        secret = base64.urlsafe_b64decode(match.group(2) + "=")
    except (binascii.Error, ValueError):
        return None
    return (match.group(1), secret) if len(secret) == _SECRET_BYTES else None


def ensure_keys_table(ws: Workspace) -> None:
    if not ws.has_table(KEYS_TABLE):
        import ibis

        ws.con.create_table(KEYS_TABLE, schema=ibis.schema(KEYS_SCHEMA))


def create_key(ws: Workspace, scope: str, name: str | None = None) -> NewKey:
    """Create a key with ``scope``; returns the key (shown once) and its record."""
    check_scope(scope)
    require_duckdb(ws, "API keys")
    if name is not None and not name.strip():
        name = None
    ensure_keys_table(ws)
    raw = ws.con.con
    taken = {row[0] for row in raw.execute("SELECT prefix FROM api_keys").fetchall()}
    prefix = secrets.token_hex(4)
    while prefix in taken:
        prefix = secrets.token_hex(4)
    secret = secrets.token_bytes(_SECRET_BYTES)
    key = f"jl_{prefix}_{base64.urlsafe_b64encode(secret).rstrip(b'=').decode('ascii')}"
    now = datetime.now(UTC)
    with ws.transaction():
        raw.execute(
            "INSERT INTO api_keys (prefix, name, scope, key_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL)",
            [prefix, name, scope, hash_secret(secret), now],
        )
    return NewKey(key, ApiKey(prefix, name, scope, now, None))


def list_keys(ws: Workspace) -> list[ApiKey]:
    """Every key (revoked ones too), oldest first."""
    require_duckdb(ws, "API keys")
    if not ws.has_table(KEYS_TABLE):
        return []
    rows = ws.con.con.execute(
        "SELECT prefix, name, scope, created_at, revoked_at FROM api_keys ORDER BY created_at, prefix"
    ).fetchall()
    return [ApiKey(*row) for row in rows]


def revoke_key(ws: Workspace, prefix: str) -> ApiKey:
    """Revoke the key with ``prefix`` (revoking twice keeps the first time); raises UnknownKeyError."""
    prefix = prefix.strip().removeprefix("jl_")[:8]
    known = {k.prefix: k for k in list_keys(ws)}
    if prefix not in known:
        shown = ", ".join(sorted(known)) or "(none)"
        raise UnknownKeyError(f"no API key has the prefix {prefix!r}; expected one of: {shown}")
    if known[prefix].revoked:
        return known[prefix]
    now = datetime.now(UTC)
    with ws.transaction():
        ws.con.con.execute("UPDATE api_keys SET revoked_at = ? WHERE prefix = ?", [now, prefix])
    old = known[prefix]
    return ApiKey(old.prefix, old.name, old.scope, old.created_at, now)


class KeyRing:
    """The keys of a workspace held in memory, so that checking a request needs no query.

    The server is the workspace's only writer, so it reloads the ring after each change it makes.
    """

    def __init__(self, hashes: dict[str, tuple[str, ApiKey]]) -> None:
        self._by_prefix = hashes

    @classmethod
    def load(cls, ws: Workspace) -> KeyRing:
        if not ws.has_table(KEYS_TABLE):
            return cls({})
        rows = ws.con.con.execute(
            "SELECT prefix, name, scope, created_at, revoked_at, key_hash FROM api_keys"
        ).fetchall()
        return cls({row[0]: (row[5], ApiKey(*row[:5])) for row in rows})

    @property
    def active(self) -> int:
        """The number of keys that are not revoked."""
        return sum(not info.revoked for _, info in self._by_prefix.values())

    def authenticate(self, key: str) -> ApiKey | None:
        """The key's record when ``key`` is valid and not revoked, else None."""
        parsed = parse_key(key)
        if parsed is None:
            return None
        prefix, secret = parsed
        entry = self._by_prefix.get(prefix)
        if entry is None:
            return None
        stored, info = entry
        if not hmac.compare_digest(hash_secret(secret), stored) or info.revoked:
            return None
        return info


def require_duckdb(ws: Workspace, what: str) -> None:
    if ws.engine != "duckdb":
        raise WorkspaceError(f"{what} needs a DuckDB workspace; this one runs on {ws.engine}")
