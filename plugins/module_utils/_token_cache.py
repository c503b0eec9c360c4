# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small on-disk cache of access tokens, so that a play of many tasks requests one token.

FOR INTERNAL COLLECTION USE ONLY: names and signatures may change in any release.

What is kept: bearer tokens for the Cloud Partner Portal scope obtained with client credentials, each with its
expiry time, keyed by a SHA-256 of authority, client id and scope (no secret, no hash of a secret).
Where: ``<cache home>/azure_marketplace.cloudpartner/tokens.json`` (cache home: ``token_cache_dir``, else
``$XDG_CACHE_HOME``, ``$HOME/.cache`` or the passwd home's ``.cache``; only absolute paths, otherwise nothing is kept).
How long: until the token expires (at most its lifetime, never more than 24 h); expired entries are dropped at the
next write. Who can read it: the Unix user (any process of that user) and root; the directory is created by this
cache with mode 0700 and the file with mode 0600, and a directory or file that is not exactly private is not used.
This cache never changes the mode or owner of anything, never follows a symlink to the directory or the files in it,
and any problem with it only means that a token is requested as usual.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import stat
import time
import typing as t

try:
    import fcntl
except ImportError:  # not on Windows; the lock only saves token requests
    fcntl = None  # type: ignore[assignment]

try:
    import pwd
except ImportError:  # not on Windows
    pwd = None  # type: ignore[assignment]

CACHE_DIRECTORY_NAME = "azure_marketplace.cloudpartner"
FILE_NAME = "tokens.json"
LOCK_NAME = "tokens.lock"
TEMP_PREFIX = ".tokens-"
FORMAT_VERSION = 1

# A cached token is used only while it stays valid this long: a task may wait for minutes.
MIN_REMAINING_SECONDS = 300
# Entra ID tokens live 60-90 minutes; anything claiming more than a day is not believed.
MAX_LIFETIME_SECONDS = 24 * 3600
# A few dozen tokens fit; a bigger file is not ours (and is never read whole into memory).
MAX_FILE_BYTES = 64 * 1024
MAX_TOKEN_CHARS = 16 * 1024
# A temporary file older than this was left by a killed writer (a write takes milliseconds).
STALE_TEMP_SECONDS = 60
LOCK_POLL_SECONDS = 0.05
MAX_LOCK_WAIT_SECONDS = 60.0

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# Everything below works relative to one verified directory descriptor; without that (Windows) there is no cache.
# (os.replace takes dir_fd wherever os.rename does; supports_dir_fd lists only the latter.)
_SUPPORTED = bool(_O_NOFOLLOW and _O_DIRECTORY) and {os.open, os.stat, os.unlink, os.rename} <= os.supports_dir_fd and os.listdir in os.supports_fd
# Printable ASCII without spaces: what can go into an Authorization header unchanged.
_TOKEN_PATTERN = re.compile(r"[\x21-\x7e]+")
_ADVICE = (
    "The collection never changes modes or owners: remove that path (it is then created as a private directory of "
    "mode 0700), or point token_cache_dir (CLOUDPARTNER_TOKEN_CACHE_DIR) elsewhere, or set token_cache to false."
)

Entry = t.Dict[str, t.Any]


def default_cache_home(environ: t.Optional[t.Mapping[str, str]] = None) -> str | None:
    """The cache home: ``$XDG_CACHE_HOME``, ``$HOME/.cache`` or the passwd home's ``.cache``; None if none is absolute.

    Relative values are skipped (the XDG spec says so): a relative path would put bearer tokens into the working
    directory, that is the project or the CI workspace.
    """
    environ = os.environ if environ is None else environ
    xdg = environ.get("XDG_CACHE_HOME") or ""
    if os.path.isabs(xdg):
        return xdg
    home = environ.get("HOME") or ""
    if os.path.isabs(home):
        return os.path.join(home, ".cache")
    try:
        home = pwd.getpwuid(os.getuid()).pw_dir if pwd is not None else ""
    except Exception:  # pylint: disable=broad-exception-caught
        # no passwd entry (KeyError), as for an arbitrary uid in a container
        home = ""
    if isinstance(home, str) and os.path.isabs(home):
        return os.path.join(home, ".cache")
    return None


def cache_key(authority: str, client_id: str, scope: str) -> str:
    """The cache key of a token: SHA-256 of authority, client id and scope.

    Deliberately without the client secret: an unsalted hash of it next to the tokens was an offline oracle for the
    secret, and the token belongs to the identity, not to one of its secrets. The price: a rotated or wrong secret is
    noticed only when the cached token expires.
    """
    material = json.dumps([authority.lower(), client_id.lower(), scope])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _usable_token(token: t.Any) -> bool:
    return isinstance(token, str) and len(token) <= MAX_TOKEN_CHARS and _TOKEN_PATTERN.fullmatch(token) is not None


def _lifetime(expires_in: t.Any) -> float | None:
    """Seconds a new token may be kept: at most MAX_LIFETIME_SECONDS; None for a value not worth caching.

    Non-finite, non-positive and unreadable values are refused rather than guessed; a huge finite one is clamped.
    """
    if isinstance(expires_in, bool):
        return None
    if isinstance(expires_in, int):
        value = float(min(expires_in, MAX_LIFETIME_SECONDS))  # float(10**400) would raise OverflowError
    elif isinstance(expires_in, float):
        value = expires_in
    elif isinstance(expires_in, str) and len(expires_in) <= 32:
        value = float(expires_in)  # "inf" and "nan" parse, and are refused below
    else:
        return None
    if not math.isfinite(value) or value <= MIN_REMAINING_SECONDS:
        return None  # a token that would never be served from the cache is not written down
    return min(value, MAX_LIFETIME_SECONDS)


def _expiry(entry: t.Any, now: float) -> float | None:
    """Expiry time of a stored entry; None for anything damaged, expired or further away than MAX_LIFETIME_SECONDS."""
    if not isinstance(entry, dict) or not _usable_token(entry.get("access_token")):
        return None
    expires_on = entry.get("expires_on")
    if isinstance(expires_on, bool) or not isinstance(expires_on, (int, float)):
        return None
    if isinstance(expires_on, int) and abs(expires_on) > 2**53:
        return None  # absurd, and float() of a huge int raises
    value = float(expires_on)
    # The upper bound also limits what a backwards clock jump can revive.
    if not math.isfinite(value) or not now < value <= now + MAX_LIFETIME_SECONDS:
        return None
    return value


def _reject_constant(name: str) -> t.NoReturn:
    raise ValueError(f"{name} is not a number")


def _decode(data: bytes) -> t.Any:
    return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)


def _valid_entries(document: t.Any, now: float) -> dict[str, Entry]:
    """The usable, unexpired entries of a decoded document (wrong types anywhere mean: not usable)."""
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
        return {}
    tokens = document.get("tokens")
    if not isinstance(tokens, dict):
        return {}
    entries: dict[str, Entry] = {}
    for key, entry in tokens.items():
        expires_on = _expiry(entry, now)
        if isinstance(key, str) and len(key) <= 128 and expires_on is not None:
            entries[key] = {"access_token": entry["access_token"], "expires_on": expires_on}
    return entries


def _encode(entries: dict[str, Entry]) -> bytes:
    document = {"version": FORMAT_VERSION, "tokens": entries}
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _bounded(entries: dict[str, Entry], newest: str) -> bytes | None:
    """The document with as many entries as fit into MAX_FILE_BYTES: ``newest`` first, then the longest-lived."""
    ordered = sorted(entries.items(), key=lambda item: (item[0] != newest, -item[1]["expires_on"]))
    size = len(_encode({}))
    kept: dict[str, Entry] = {}
    for key, entry in ordered:
        # one more "key":{...} member, and a comma unless it is the first
        extra = len(_encode({key: entry})) - len(_encode({})) + (1 if kept else 0)
        if size + extra > MAX_FILE_BYTES:
            break
        kept[key] = entry
        size += extra
    if newest not in kept:
        return None
    data = _encode(kept)
    return data if len(data) <= MAX_FILE_BYTES else None


def _read_at_most(descriptor: int, limit: int) -> bytes:
    chunks = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(descriptor, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def _make_missing_directories(path: str) -> None:
    """Create the missing components of ``path`` with mode 0700 (as XDG asks); existing ones are left as they are."""
    missing = []
    while not os.path.lexists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for component in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a parallel task was faster
            os.mkdir(component, 0o700)


def _directory_problem(info: os.stat_result) -> str | None:
    """Why a directory (fstat of an open descriptor) is not private to this user; None if it is."""
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != os.getuid():
        return f"belongs to uid {info.st_uid}, not to uid {os.getuid()}"
    if stat.S_IMODE(info.st_mode) != 0o700:
        return f"has mode {stat.S_IMODE(info.st_mode):04o}, not 0700"
    return None


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _file_is_private(info: os.stat_result) -> bool:
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077 and info.st_size <= MAX_FILE_BYTES


class TokenCache:
    """Tokens kept in ``<cache_home>/azure_marketplace.cloudpartner/tokens.json``; see the module docstring.

    ``cache_home`` None (no home found) means no cache, silently; a relative one means no cache with a warning.
    ``warn`` receives at most one message per instance, when the cache cannot be used for a reason the user can fix;
    with ``quiet_when_unavailable`` (the default cache home) a directory that cannot be created is not one of them.
    ``sleep`` and ``monotonic`` exist for tests of the lock.
    """

    def __init__(
        self,
        cache_home: str | None,
        clock: t.Callable[[], float] = time.time,
        warn: t.Callable[[str], None] | None = None,
        *,
        sleep: t.Callable[[float], None] = time.sleep,
        monotonic: t.Callable[[], float] = time.monotonic,
        quiet_when_unavailable: bool = False,
    ) -> None:
        self.cache_home = cache_home
        absolute = isinstance(cache_home, str) and os.path.isabs(cache_home)
        self.directory: str | None = os.path.join(cache_home, CACHE_DIRECTORY_NAME) if absolute else None
        self._clock = clock
        self._warn = warn
        self._warned = False
        self.quiet_when_unavailable = quiet_when_unavailable
        self._sleep = sleep
        self._monotonic = monotonic

    def get(self, key: str) -> str | None:
        """A cached token for ``key`` that stays valid for more than MIN_REMAINING_SECONDS, else None."""
        found = self.lookup(key)
        return found[0] if found else None

    def lookup(self, key: str) -> tuple[str, float] | None:
        """``(token, expires_on)`` (on ``clock``) for ``key`` while it stays valid for more than MIN_REMAINING_SECONDS."""
        try:
            with self._private_directory(create=False) as directory:
                if directory is None:
                    return None
                now = self._clock()
                entry = self._read(directory, now).get(key)
                if entry is None or entry["expires_on"] - now <= MIN_REMAINING_SECONDS:
                    return None
                return entry["access_token"], float(entry["expires_on"])
        except Exception:  # pylint: disable=broad-exception-caught
            return None  # the cache only saves token requests

    def put(self, key: str, token: str, expires_in: t.Any) -> None:
        """Store ``token`` for ``key``; expired entries and stale temporary files go at the same time."""
        try:
            self._put(key, token, expires_in)
        except Exception:  # pylint: disable=broad-exception-caught
            pass  # the cache only saves token requests

    @contextlib.contextmanager
    def locked(self, wait: float = 5.0) -> t.Iterator[bool]:
        """Serialise token requests of parallel tasks (forks): True if the lock was obtained within ``wait`` seconds.

        On False the caller goes on without the lock: at worst two tasks request a token each.
        """
        descriptor = None
        try:
            descriptor = self._lock(wait)
        except Exception:  # pylint: disable=broad-exception-caught
            descriptor = None
        try:
            yield descriptor is not None
        finally:
            if descriptor is not None:
                with contextlib.suppress(OSError):
                    os.close(descriptor)  # releases the flock

    def _put(self, key: str, token: str, expires_in: t.Any) -> None:
        lifetime = _lifetime(expires_in)
        if lifetime is None or not _usable_token(token) or not isinstance(key, str):
            return
        with self._private_directory(create=True) as directory:
            if directory is None:
                return
            now = self._clock()
            entries = self._read(directory, now)  # only unexpired entries survive: pruned on every write
            entries[key] = {"access_token": token, "expires_on": now + lifetime}
            data = _bounded(entries, key)
            self._remove_stale_temporaries(directory, now)
            if data is not None:
                self._replace_file(directory, data)

    def _notify(self, message: str) -> None:
        if self._warned or self._warn is None:
            return
        self._warned = True
        with contextlib.suppress(Exception):
            self._warn(message)

    @contextlib.contextmanager
    def _private_directory(self, create: bool) -> t.Iterator[int | None]:
        """A descriptor of the verified private directory, or None; everything else is opened relative to it."""
        descriptor = self._open_private_directory(create)
        try:
            yield descriptor
        finally:
            if descriptor is not None:
                os.close(descriptor)

    def _open_private_directory(self, create: bool) -> int | None:
        if not _SUPPORTED:
            return None
        if self.directory is None:
            if self.cache_home is None:
                return None  # no absolute home could be found: nothing is kept, as documented
            self._notify(
                f"The token cache is not used: its cache home {self.cache_home!r} is not an absolute path. "
                "Set token_cache_dir (CLOUDPARTNER_TOKEN_CACHE_DIR) to an absolute path, or token_cache to false."
            )
            return None
        if create:
            try:
                _make_missing_directories(self.cache_home)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(self.directory, 0o700)
            except OSError as error:
                if self.quiet_when_unavailable:
                    # The default home of an account without a writable home (OpenShift, HOME=/): no warning per task.
                    return None
                self._notify(f"The token cache is not used: {self.directory} cannot be created ({_reason(error)}). {_ADVICE}")
                return None
        try:
            descriptor = os.open(self.directory, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC)
        except FileNotFoundError:
            return None  # nothing was ever stored (get), or it was removed a moment ago
        except OSError as error:
            reason = "is a symbolic link" if os.path.islink(self.directory) else f"cannot be opened ({_reason(error)})"
            self._notify(f"The token cache is not used: {self.directory} {reason}. {_ADVICE}")
            return None
        problem = self._verified(descriptor)
        if problem is not None:
            os.close(descriptor)
            self._notify(f"The token cache is not used: {self.directory} {problem}. {_ADVICE}")
            return None
        return descriptor

    @staticmethod
    def _verified(descriptor: int) -> str | None:
        return _directory_problem(os.fstat(descriptor))

    @staticmethod
    def _read(directory: int, now: float) -> dict[str, Entry]:
        """Unexpired entries of the file; {} for a missing, foreign, oversized or damaged one."""
        try:
            descriptor = os.open(FILE_NAME, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC, dir_fd=directory)
        except OSError:
            return {}  # missing, or a symlink (not followed)
        try:
            if not _file_is_private(os.fstat(descriptor)):
                return {}  # a FIFO, a device, somebody else's or readable by others
            data = _read_at_most(descriptor, MAX_FILE_BYTES + 1)
        finally:
            os.close(descriptor)
        if len(data) > MAX_FILE_BYTES:
            return {}  # grew after the fstat
        try:
            return _valid_entries(_decode(data), now)
        except Exception:  # pylint: disable=broad-exception-caught
            return {}  # RecursionError, MemoryError, UnicodeDecodeError, ValueError: all mean "no cache"

    @staticmethod
    def _remove_stale_temporaries(directory: int, now: float) -> None:
        for name in os.listdir(directory):
            if not name.startswith(TEMP_PREFIX):
                continue
            with contextlib.suppress(OSError):
                if now - os.stat(name, dir_fd=directory, follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS:
                    os.unlink(name, dir_fd=directory)

    @staticmethod
    def _replace_file(directory: int, data: bytes) -> None:
        """Write a new 0600 file next to the old one and rename it over it: readers see the old or the new file."""
        name = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
        descriptor = os.open(name, flags, 0o600, dir_fd=directory)
        try:
            try:
                _write_all(descriptor, data)
            finally:
                os.close(descriptor)
            os.replace(name, FILE_NAME, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=directory)
            raise

    def _lock(self, wait: float) -> int | None:
        if fcntl is None:
            return None
        with self._private_directory(create=True) as directory:
            if directory is None:
                return None
            flags = os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
            descriptor = os.open(LOCK_NAME, flags, 0o600, dir_fd=directory)
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                os.close(descriptor)
                return None
            if self._poll_lock(descriptor, wait):
                return descriptor
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)
        return None

    def _poll_lock(self, descriptor: int, wait: float) -> bool:
        """flock with LOCK_NB, polled until ``wait`` seconds have passed: a stuck fork never stalls the others."""
        wait = float(wait)
        wait = 0.0 if math.isnan(wait) or wait <= 0 else min(wait, MAX_LOCK_WAIT_SECONDS)  # "forever" is a minute
        deadline = self._monotonic() + wait
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                remaining = deadline - self._monotonic()
                if remaining <= 0:
                    return False
                self._sleep(min(LOCK_POLL_SECONDS, remaining))
