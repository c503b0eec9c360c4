# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small on-disk cache of access tokens, so that a play of many tasks requests one token.

FOR INTERNAL COLLECTION USE ONLY: names and signatures may change in any release.

Every module run is a new process, so MSAL's in-memory cache cannot help. This cache is
read before MSAL is even imported: a hit costs one small file read, no import and no
request. Entries are keyed by a SHA-256 of authority, client id, scope and client secret,
so only the very same credentials reuse a token. The file holds bearer tokens: it is
written with mode 0600 in a directory of mode 0700, atomically, and a file readable by
others is ignored. Any problem with the cache only means a token is requested as usual.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import time
import typing as t

try:
    import fcntl
except ImportError:  # not on Windows; the lock only saves token requests
    fcntl = None  # type: ignore[assignment]

# A cached token is used only while it stays valid this long: a task may wait for minutes.
MIN_REMAINING_SECONDS = 300
FORMAT_VERSION = 1


def default_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ansible-azure_marketplace-cloudpartner", "tokens.json")


def _expires_on(entry: t.Any) -> float:
    """Expiry time of a cache entry; 0 for anything damaged, so that it counts as expired."""
    value = entry.get("expires_on") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def cache_key(authority: str, client_id: str, scope: str, client_secret: str) -> str:
    material = "\n".join((authority.lower(), client_id.lower(), scope, client_secret))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class TokenCache:
    def __init__(self, path: str, clock: t.Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock

    def get(self, key: str) -> t.Optional[str]:
        entry = self._read().get(key)
        token = entry.get("access_token") if isinstance(entry, dict) else None
        if not isinstance(token, str) or not token:
            return None
        return token if _expires_on(entry) - self._clock() > MIN_REMAINING_SECONDS else None

    def put(self, key: str, token: str, expires_in: t.Any) -> None:
        try:
            lifetime = float(expires_in)
        except (TypeError, ValueError):
            return
        now = self._clock()
        entries = {name: entry for name, entry in self._read().items() if _expires_on(entry) > now}
        entries[key] = {"access_token": token, "expires_on": now + lifetime}
        self._write({"version": FORMAT_VERSION, "tokens": entries})

    @contextlib.contextmanager
    def locked(self) -> t.Iterator[None]:
        """Serialise token requests of parallel tasks (forks) with the same cache, where possible."""
        handle = None
        try:
            if fcntl is not None and self._ensure_directory():
                handle = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:
            handle = None
        try:
            yield
        finally:
            if handle is not None:
                os.close(handle)

    def _ensure_directory(self) -> bool:
        """The cache directory exists, is ours and only ours (tightened to 0700 if needed)."""
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            info = os.stat(directory)
            if info.st_uid != os.getuid():
                return False
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                os.chmod(directory, 0o700)
        except OSError:
            return False
        return True

    def _read(self) -> dict:
        try:
            with open(self.path, "rb") as handle:
                info = os.fstat(handle.fileno())
                if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO) or info.st_uid != os.getuid():
                    return {}
                document = json.loads(handle.read().decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION or not isinstance(document.get("tokens"), dict):
            return {}
        return document["tokens"]

    def _write(self, document: dict) -> None:
        if not self._ensure_directory():
            return
        directory = os.path.dirname(self.path)
        try:
            descriptor, temporary = tempfile.mkstemp(prefix=".tokens-", dir=directory)
        except OSError:
            return
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), 0o600)
                json.dump(document, handle)
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
