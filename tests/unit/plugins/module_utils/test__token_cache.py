# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Token cache tests, named after the review findings they cover (security review M2, L5-L9, I8; maintainer 1.1)."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import stat
import threading

import pytest

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _token_cache as tc

AUTHORITY = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b0f4a2c-1111-4222-8333-944445555666"
SCOPE = "https://cloudpartner.azure.com/.default"
KEY = tc.cache_key(AUTHORITY, CLIENT, SCOPE)
TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJodHRwczovL2Nsb3VkcGFydG5lci5henVyZS5jb20ifQ.SIGNATURE-abc_123"
NOW = 1_000_000.0

needs_fcntl = pytest.mark.skipif(tc.fcntl is None, reason="flock needs fcntl")


class Clock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


class FakeTime:
    """monotonic() and sleep() for the lock: sleeping only moves this clock."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def home(tmp_path):
    """A cache home that does not exist yet."""
    return str(tmp_path / "cache-home")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def warnings():
    return []


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def cache(home, clock, warnings, fake_time):
    return make_cache(home, clock, warnings, fake_time)


def make_cache(home, clock, warnings=None, fake_time=None):
    fake_time = fake_time or FakeTime()
    warn = warnings.append if warnings is not None else None
    return tc.TokenCache(home, clock, warn, sleep=fake_time.sleep, monotonic=fake_time.monotonic)


def private_dir(home):
    return os.path.join(home, tc.CACHE_DIRECTORY_NAME)


def cache_file(home):
    return os.path.join(private_dir(home), tc.FILE_NAME)


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def make_private_dir(home):
    os.makedirs(private_dir(home), exist_ok=True)
    os.chmod(private_dir(home), 0o700)  # the test's own directory, whatever the umask
    return private_dir(home)


def plant(home, content, mode=0o600):
    """Put a tokens.json of the user's own into a valid private directory, as an earlier run (or damage) left it."""
    make_private_dir(home)
    data = content if isinstance(content, bytes) else content.encode("utf-8")
    with open(cache_file(home), "wb") as handle:
        handle.write(data)
    os.chmod(cache_file(home), mode)


def document(expires_on="1003600", token=f'"{TOKEN}"', key=KEY):
    return f'{{"version": 1, "tokens": {{"{key}": {{"access_token": {token}, "expires_on": {expires_on}}}}}}}'


def stored_tokens(home):
    with open(cache_file(home), encoding="utf-8") as handle:
        return json.load(handle)["tokens"]


# --- basics -------------------------------------------------------------------------------------------------------


def test_round_trip_and_second_instance_reads_what_the_first_wrote(cache, home, clock):
    assert cache.get(KEY) is None
    cache.put(KEY, TOKEN, 3599)
    assert cache.get(KEY) == TOKEN
    assert make_cache(home, clock).get(KEY) == TOKEN
    assert make_cache(home, clock).get(tc.cache_key(AUTHORITY, CLIENT, "other/.default")) is None


def test_L5_new_directory_and_file_are_private(cache, home):
    cache.put(KEY, TOKEN, 3599)
    assert cache_file(home) == os.path.join(home, "azure_marketplace.cloudpartner", "tokens.json")
    assert mode_of(private_dir(home)) == 0o700
    assert mode_of(cache_file(home)) == 0o600
    assert os.listdir(private_dir(home)) == ["tokens.json"]
    with cache.locked() as obtained:
        assert obtained is (tc.fcntl is not None)
    if tc.fcntl is not None:
        assert mode_of(os.path.join(private_dir(home), "tokens.lock")) == 0o600
        assert sorted(os.listdir(private_dir(home))) == ["tokens.json", "tokens.lock"]


def test_M2_token_is_served_only_while_it_stays_valid_long_enough(cache, clock):
    cache.put(KEY, TOKEN, 3600)
    clock.now += 3600 - tc.MIN_REMAINING_SECONDS - 1
    assert cache.get(KEY) == TOKEN
    clock.now += 1
    assert cache.get(KEY) is None


def test_string_lifetime_is_accepted(cache):
    cache.put(KEY, TOKEN, "3599")
    assert cache.get(KEY) == TOKEN


@pytest.mark.parametrize("token", ["", "with space", "trailing-newline\n", "tab\there", "n\u00e9", "x" * (tc.MAX_TOKEN_CHARS + 1), None, 42])
def test_token_unfit_for_an_authorization_header_is_not_stored(cache, home, token):
    cache.put(KEY, token, 3600)
    assert cache.get(KEY) is None
    assert not os.path.exists(cache_file(home))


# --- M2: what stays on disk ---------------------------------------------------------------------------------------


def test_M2_expired_entries_are_pruned_on_every_write(cache, home, clock):
    short, long_ = (tc.cache_key(AUTHORITY, f"client-{name}", SCOPE) for name in ("short", "long"))
    cache.put(short, "short-token", 600)
    cache.put(long_, "long-token", 3600)
    clock.now += 601
    cache.put(KEY, TOKEN, 3600)
    assert sorted(stored_tokens(home)) == sorted([long_, KEY])
    assert "short-token" not in open(cache_file(home), encoding="utf-8").read()  # pylint: disable=consider-using-with


def test_M2_document_size_is_bounded_dropping_the_oldest_entries(cache, home):
    big = "t" * 15_000
    keys = [tc.cache_key(AUTHORITY, f"client-{index}", SCOPE) for index in range(5)]
    for index, key in enumerate(keys):
        cache.put(key, f"{big}{index}", 2000 + 100 * index)
    cache.put(KEY, f"{big}new", 1000)  # the newest is kept first, even with the shortest lifetime
    assert os.path.getsize(cache_file(home)) <= tc.MAX_FILE_BYTES
    assert sorted(stored_tokens(home)) == sorted([KEY, keys[4], keys[3], keys[2]])
    assert cache.get(KEY) == f"{big}new"


# --- L8: cache key ------------------------------------------------------------------------------------------------


def test_L8_cache_key_takes_no_secret():
    # Decision: the key is the identity (authority, client id, scope); two different secrets of one client share it.
    assert list(inspect.signature(tc.cache_key).parameters) == ["authority", "client_id", "scope"]
    material = json.dumps([AUTHORITY.lower(), CLIENT.lower(), SCOPE])
    assert KEY == hashlib.sha256(material.encode("utf-8")).hexdigest()


def test_L8_cache_key_normalises_case_and_separates_fields():
    assert len(KEY) == 64 and all(char in "0123456789abcdef" for char in KEY)
    assert tc.cache_key(AUTHORITY.upper(), CLIENT.upper(), SCOPE) == KEY
    assert tc.cache_key(AUTHORITY + "x", CLIENT, SCOPE) != KEY
    assert tc.cache_key(AUTHORITY, CLIENT[:-1] + "7", SCOPE) != KEY
    assert tc.cache_key(AUTHORITY, CLIENT, SCOPE.upper()) != KEY
    assert tc.cache_key("a\nb", "c", "d") != tc.cache_key("a", "b\nc", "d")


# --- L6: where the cache lives ------------------------------------------------------------------------------------


@pytest.fixture
def passwd_home(monkeypatch):
    """pwd.getpwuid answers with a chosen home directory, or KeyError for None (a uid without a passwd entry)."""
    answer = {"home": "/home/from-passwd"}

    class Entry:
        def __init__(self, pw_dir):
            self.pw_dir = pw_dir

    def getpwuid(uid):
        if answer["home"] is None:
            raise KeyError(f"getpwuid(): uid not found: {uid}")
        return Entry(answer["home"])

    if tc.pwd is None:
        pytest.skip("no pwd module")
    monkeypatch.setattr(tc.pwd, "getpwuid", getpwuid)
    return answer


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({"XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}, "/xdg"),
        ({"XDG_CACHE_HOME": "relative/xdg", "HOME": "/home/u"}, "/home/u/.cache"),
        ({"XDG_CACHE_HOME": "", "HOME": "/home/u"}, "/home/u/.cache"),
        ({"HOME": "/home/u"}, "/home/u/.cache"),
        ({"HOME": "~"}, "/home/from-passwd/.cache"),
        ({"HOME": ""}, "/home/from-passwd/.cache"),
        ({"XDG_CACHE_HOME": ".cache"}, "/home/from-passwd/.cache"),
        ({}, "/home/from-passwd/.cache"),
    ],
)
def test_L6_default_cache_home_falls_through_to_an_absolute_path(passwd_home, environ, expected):
    assert tc.default_cache_home(environ) == expected


@pytest.mark.parametrize("passwd", [None, "", "~", "relative/home"])
def test_L6_default_cache_home_is_none_without_an_absolute_home(passwd_home, passwd):
    passwd_home["home"] = passwd
    for environ in ({}, {"HOME": "~"}, {"HOME": ""}, {"XDG_CACHE_HOME": "x", "HOME": "y"}):
        assert tc.default_cache_home(environ) is None, environ


def test_L6_default_cache_home_is_never_relative(passwd_home):
    values = [None, "", "~", "rel", "./rel", "/abs"]
    for passwd in values:
        passwd_home["home"] = passwd
        for xdg in values:
            for user_home in values:
                environ = {name: value for name, value in (("XDG_CACHE_HOME", xdg), ("HOME", user_home)) if value is not None}
                result = tc.default_cache_home(environ)
                assert result is None or os.path.isabs(result), (passwd, environ, result)


def test_L6_default_cache_home_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "/from/the/environment")
    assert tc.default_cache_home() == "/from/the/environment"


def test_L6_relative_cache_home_keeps_nothing(tmp_path, monkeypatch, clock, warnings):
    monkeypatch.chdir(tmp_path)
    cache = make_cache("~/.cache", clock, warnings)
    cache.put(KEY, TOKEN, 3600)
    with cache.locked() as obtained:
        assert obtained is False
    assert cache.get(KEY) is None
    assert not os.listdir(tmp_path)
    assert len(warnings) == 1 and "not an absolute path" in warnings[0] and "token_cache_dir" in warnings[0]


def test_L6_no_cache_home_at_all_keeps_nothing_silently(tmp_path, monkeypatch, clock, warnings):
    monkeypatch.chdir(tmp_path)
    cache = make_cache(None, clock, warnings)
    cache.put(KEY, TOKEN, 3600)
    with cache.locked() as obtained:
        assert obtained is False
    assert cache.get(KEY) is None
    assert not os.listdir(tmp_path) and not warnings


def test_L6_missing_cache_home_components_are_created_private(tmp_path, clock):
    before = mode_of(tmp_path)
    home = tmp_path / "a" / "b"
    cache = make_cache(str(home), clock)
    cache.put(KEY, TOKEN, 3600)
    assert cache.get(KEY) == TOKEN
    assert [mode_of(path) for path in (tmp_path / "a", home, home / tc.CACHE_DIRECTORY_NAME)] == [0o700] * 3
    assert mode_of(tmp_path) == before


def test_L6_get_alone_creates_nothing(cache, home):
    assert cache.get(KEY) is None
    assert not os.path.lexists(home)


# --- maintainer 1.1 and L5: never change modes, refuse what is not private ---------------------------------------


def test_maintainer_1_1_sticky_world_writable_cache_home_keeps_its_mode(tmp_path, clock):
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    cache = make_cache(str(shared), clock)
    assert cache.get(KEY) is None
    with cache.locked():
        cache.put(KEY, TOKEN, 3600)
    assert cache.get(KEY) == TOKEN
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
    assert mode_of(shared / tc.CACHE_DIRECTORY_NAME) == 0o700


def test_maintainer_1_1_existing_private_directory_0755_is_not_chmodded_and_skipped(cache, home, warnings):
    os.makedirs(private_dir(home))
    os.chmod(private_dir(home), 0o755)
    assert cache.get(KEY) is None
    with cache.locked() as obtained:
        cache.put(KEY, TOKEN, 3600)
    assert obtained is False
    assert cache.get(KEY) is None
    assert mode_of(private_dir(home)) == 0o755
    assert not os.listdir(private_dir(home))
    assert len(warnings) == 1
    assert "0755" in warnings[0] and private_dir(home) in warnings[0] and "token_cache" in warnings[0]
    assert TOKEN not in warnings[0]


def test_L5_private_directory_of_another_user_is_refused(cache, home, warnings, monkeypatch):
    make_private_dir(home)
    real_uid = os.getuid()
    monkeypatch.setattr(tc.os, "getuid", lambda: real_uid + 1)  # the directory now belongs to "someone else"
    with cache.locked() as obtained:
        cache.put(KEY, TOKEN, 3600)
    assert obtained is False
    assert cache.get(KEY) is None
    assert not os.listdir(private_dir(home))
    assert mode_of(private_dir(home)) == 0o700
    assert len(warnings) == 1 and f"not to uid {real_uid + 1}" in warnings[0]


@pytest.mark.parametrize("target_mode", [0o755, 0o700])
def test_L5_symlinked_private_directory_is_refused_and_its_target_unchanged(cache, home, tmp_path, warnings, target_mode):
    target = tmp_path / "victim"
    target.mkdir()
    os.chmod(target, target_mode)
    os.makedirs(home)
    os.symlink(target, private_dir(home))
    assert cache.get(KEY) is None
    with cache.locked() as obtained:
        cache.put(KEY, TOKEN, 3600)
    assert obtained is False
    assert cache.get(KEY) is None
    assert mode_of(target) == target_mode
    assert not os.listdir(target)
    assert len(warnings) == 1 and "symbolic link" in warnings[0]


def test_L5_private_directory_that_is_a_file_is_refused(cache, home, warnings):
    os.makedirs(home)
    with open(private_dir(home), "w", encoding="utf-8") as handle:
        handle.write("not a directory")
    cache.put(KEY, TOKEN, 3600)
    assert cache.get(KEY) is None
    assert len(warnings) == 1


def test_L5_swapped_directory_after_the_check_does_not_redirect_writes(cache, home, tmp_path, monkeypatch):
    # An attacker who can rename in a parent swaps the checked directory for a symlink to another private directory
    # of the user: the cache keeps writing into the directory it checked, through its descriptor.
    make_private_dir(home)
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    moved = tmp_path / "checked-directory"
    original = tc.TokenCache._verified

    def verify_then_swap(descriptor):
        problem = original(descriptor)
        if not moved.exists():
            os.rename(private_dir(home), moved)
            os.symlink(victim, private_dir(home))
        return problem

    monkeypatch.setattr(tc.TokenCache, "_verified", staticmethod(verify_then_swap))
    cache.put(KEY, TOKEN, 3600)
    assert not os.listdir(victim)
    assert os.listdir(moved) == ["tokens.json"]


def test_L5_fifo_at_tokens_json_does_not_block(cache, home):
    make_private_dir(home)
    fifo = cache_file(home)
    os.mkfifo(fifo, 0o600)
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("token", cache.get(KEY)), daemon=True)
    worker.start()
    worker.join(timeout=30)  # a safety net only: a blocked open() never returns
    try:
        assert not worker.is_alive(), "get() blocked on a FIFO"
    finally:
        if worker.is_alive():
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # lets the blocked reader go
    assert result == {"token": None}
    cache.put(KEY, TOKEN, 3600)  # the FIFO is replaced, not written into
    assert stat.S_ISREG(os.lstat(fifo).st_mode)
    assert cache.get(KEY) == TOKEN


@needs_fcntl
def test_L5_fifo_at_the_lock_file_is_not_used(cache, home):
    make_private_dir(home)
    os.mkfifo(os.path.join(private_dir(home), tc.LOCK_NAME), 0o600)
    with cache.locked() as obtained:
        assert obtained is False


def test_L5_symlinked_tokens_json_is_not_read_nor_written_through(cache, home, tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text(document(), encoding="utf-8")
    os.chmod(target, 0o600)
    make_private_dir(home)
    os.symlink(target, cache_file(home))
    assert cache.get(KEY) is None
    cache.put(KEY, "new-token", 3600)
    assert target.read_text(encoding="utf-8") == document()
    assert not os.path.islink(cache_file(home))
    assert cache.get(KEY) == "new-token"


@needs_fcntl
def test_L5_symlinked_lock_file_is_not_followed(cache, home, tmp_path):
    make_private_dir(home)
    target = tmp_path / "lock-target"
    os.symlink(target, os.path.join(private_dir(home), tc.LOCK_NAME))
    with cache.locked() as obtained:
        assert obtained is False
    assert not target.exists()


def test_L5_control_a_private_file_is_read(cache, home):
    plant(home, document())
    assert cache.get(KEY) == TOKEN


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_L5_file_readable_or_writable_by_others_is_ignored(cache, home, mode):
    plant(home, document(), mode)
    assert cache.get(KEY) is None


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
def test_L5_file_of_another_user_is_ignored(cache, home):
    plant(home, document())
    os.chown(cache_file(home), 4242, -1)
    assert cache.get(KEY) is None


def test_L5_directory_at_tokens_json_is_survived(cache, home):
    make_private_dir(home)
    os.mkdir(cache_file(home), 0o700)
    assert cache.get(KEY) is None
    cache.put(KEY, TOKEN, 3600)  # os.replace cannot replace a directory: nothing stored, nothing raised
    assert cache.get(KEY) is None


# --- L7: damaged files, absurd lifetimes, no crash ----------------------------------------------------------------

DEEP_WITHIN_SIZE = "[" * 32_000 + "]" * 32_000

DAMAGED = {
    "deep nesting, 100000 levels": "[" * 100_000 + "]" * 100_000,
    "deep nesting within the size limit": DEEP_WITHIN_SIZE,
    "deep nesting inside an entry": document(expires_on="[" * 30_000 + "]" * 30_000),
    "huge int expires_on": document(expires_on="1" + "0" * 400),
    "int beyond the digit limit": document(expires_on="9" * 5000),
    "huge float expires_on": document(expires_on="1e400"),
    "Infinity expires_on": document(expires_on="Infinity"),
    "-Infinity expires_on": document(expires_on="-Infinity"),
    "NaN expires_on": document(expires_on="NaN"),
    "expires_on ten days ahead": document(expires_on=str(NOW + 10 * 86400)),
    "expires_on in the past": document(expires_on=str(NOW - 1)),
    "not json": "not json",
    "not utf-8": b"\xff\xfe\x00",
    "empty": "",
    "a list": json.dumps([1, 2]),
    "another version": json.dumps({"version": 2, "tokens": {}}),
    "tokens not a dict": json.dumps({"version": 1, "tokens": []}),
    "entry not a dict": document().replace(f'{{"access_token": "{TOKEN}", "expires_on": 1003600}}', '"x"'),
    "token not a string": document(token="5"),
    "empty token": document(token='""'),
    "token with a newline": document(token='"a\\nb"'),
    "expires_on a string": document(expires_on='"later"'),
    "expires_on a bool": document(expires_on="true"),
    "expires_on null": document(expires_on="null"),
    "expires_on missing": document().replace(', "expires_on": 1003600', ""),
}


def test_L7_precondition_the_nested_payloads_do_overflow_the_json_decoder():
    with pytest.raises(RecursionError):
        json.loads(DEEP_WITHIN_SIZE)
    assert len(DEEP_WITHIN_SIZE) <= tc.MAX_FILE_BYTES


@pytest.mark.parametrize("content", list(DAMAGED.values()), ids=list(DAMAGED))
def test_L7_damaged_file_gives_no_token_and_no_exception(cache, home, content):
    plant(home, content)
    assert cache.get(KEY) is None
    cache.put(KEY, "fresh-token", 3600)
    assert cache.get(KEY) == "fresh-token"
    assert list(stored_tokens(home)) == [KEY]


def test_L7_file_larger_than_64_kib_is_ignored(cache, home):
    valid = document()
    plant(home, valid + " " * (tc.MAX_FILE_BYTES - len(valid)))
    assert cache.get(KEY) == TOKEN  # control: exactly at the limit it is read
    plant(home, valid + " " * (tc.MAX_FILE_BYTES - len(valid) + 1))
    assert cache.get(KEY) is None


def test_L7_file_that_grows_after_the_check_is_read_only_up_to_the_limit(cache, home, monkeypatch):
    # fstat said "small enough", then the file grew: the read itself stops after 64 KiB + 1 byte.
    valid = document()
    plant(home, valid + " " * (4 * tc.MAX_FILE_BYTES))
    monkeypatch.setattr(tc, "_file_is_private", lambda info: True)
    lengths = []
    original = tc._read_at_most

    def spy(descriptor, limit):
        data = original(descriptor, limit)
        lengths.append(len(data))
        return data

    monkeypatch.setattr(tc, "_read_at_most", spy)
    assert cache.get(KEY) is None
    assert lengths == [tc.MAX_FILE_BYTES + 1]


@pytest.mark.parametrize("expires_in", [10**9, 10**400, "1e9", 86400.5])
def test_L7_lifetime_is_clamped_to_24_hours(cache, home, clock, expires_in):
    cache.put(KEY, TOKEN, expires_in)
    assert stored_tokens(home)[KEY]["expires_on"] == NOW + tc.MAX_LIFETIME_SECONDS
    clock.now += tc.MAX_LIFETIME_SECONDS - tc.MIN_REMAINING_SECONDS - 1
    assert cache.get(KEY) == TOKEN
    clock.now += 1
    assert cache.get(KEY) is None


@pytest.mark.parametrize(
    "expires_in",
    ["inf", "Infinity", "nan", "-inf", float("inf"), float("nan"), -5, 0, tc.MIN_REMAINING_SECONDS, None, "soon", True, object(), "9" * 40],
)
def test_L7_non_finite_non_positive_or_unreadable_lifetime_is_not_cached(cache, home, clock, expires_in):
    cache.put(KEY, TOKEN, expires_in)
    assert not os.path.exists(cache_file(home))
    clock.now += 10 * 365 * 86400
    assert cache.get(KEY) is None


def test_L7_cache_home_with_a_nul_byte_raises_nothing(clock):
    cache = make_cache("/tmp/bad\x00home", clock)
    cache.put(KEY, TOKEN, 3600)
    with cache.locked() as obtained:
        assert obtained is False
    assert cache.get(KEY) is None


@pytest.mark.parametrize(
    "target, error",
    [("_decode", MemoryError), ("_decode", RecursionError), ("_encode", RuntimeError), ("_bounded", OverflowError), ("_read_at_most", OSError)],
)
def test_L7_any_exception_inside_the_cache_is_swallowed(cache, home, monkeypatch, target, error):
    plant(home, document())

    def boom(*args, **kwargs):
        raise error("inside the cache")

    monkeypatch.setattr(tc, target, boom)
    cache.get(KEY)
    cache.put(KEY, "other-token", 3600)
    with cache.locked():
        pass


def test_L7_failed_replace_leaves_no_temporary_file(cache, home, monkeypatch):
    make_private_dir(home)

    def refuse(*args, **kwargs):
        raise PermissionError("replace refused")

    monkeypatch.setattr(tc.os, "replace", refuse)
    cache.put(KEY, TOKEN, 3600)
    assert not os.listdir(private_dir(home))


def test_L7_warn_callback_errors_are_swallowed(home, clock):
    def broken_warn(message):
        raise RuntimeError(message)

    os.makedirs(private_dir(home))
    os.chmod(private_dir(home), 0o755)
    cache = tc.TokenCache(home, clock, broken_warn)
    cache.put(KEY, TOKEN, 3600)
    assert cache.get(KEY) is None


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_L7_keyboard_interrupt_and_system_exit_are_not_swallowed(cache, home, monkeypatch, interrupt):
    plant(home, document())

    def stop(*args, **kwargs):
        raise interrupt()

    monkeypatch.setattr(tc, "_decode", stop)
    with pytest.raises(interrupt):
        cache.get(KEY)
    with pytest.raises(interrupt):
        cache.put(KEY, TOKEN, 3600)
    monkeypatch.setattr(tc.TokenCache, "_poll_lock", stop)
    if tc.fcntl is not None:
        with pytest.raises(interrupt):
            with cache.locked():
                pass


# --- L9: a bounded lock -------------------------------------------------------------------------------------------


@needs_fcntl
def test_L9_lock_gives_up_after_wait_when_another_holder_keeps_it(cache, home, fake_time):
    with cache.locked() as obtained:
        assert obtained is True
    holder = os.open(os.path.join(private_dir(home), tc.LOCK_NAME), os.O_RDWR)
    try:
        tc.fcntl.flock(holder, tc.fcntl.LOCK_EX | tc.fcntl.LOCK_NB)
        body_ran = False
        with cache.locked(wait=1.0) as obtained:
            body_ran = True
        assert obtained is False and body_ran
        assert sum(fake_time.sleeps) == pytest.approx(1.0)
        assert len(fake_time.sleeps) >= 20 and max(fake_time.sleeps) <= tc.LOCK_POLL_SECONDS
    finally:
        os.close(holder)


@needs_fcntl
def test_L9_lock_is_obtained_once_the_holder_lets_go(cache, home, fake_time):
    with cache.locked():
        pass
    holder = os.open(os.path.join(private_dir(home), tc.LOCK_NAME), os.O_RDWR)
    tc.fcntl.flock(holder, tc.fcntl.LOCK_EX | tc.fcntl.LOCK_NB)
    real_sleep = fake_time.sleep

    def sleep_then_release(seconds):
        real_sleep(seconds)
        if len(fake_time.sleeps) == 3:
            os.close(holder)

    fake_time.sleep = sleep_then_release
    cache = make_cache(home, Clock(), fake_time=fake_time)
    with cache.locked(wait=5.0) as obtained:
        assert obtained is True
    assert len(fake_time.sleeps) == 3


@needs_fcntl
def test_L9_lock_is_exclusive_while_held_and_released_after(cache, home):
    with cache.locked() as obtained:
        assert obtained is True
        probe = os.open(os.path.join(private_dir(home), tc.LOCK_NAME), os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                tc.fcntl.flock(probe, tc.fcntl.LOCK_EX | tc.fcntl.LOCK_NB)
        finally:
            os.close(probe)
    with cache.locked() as obtained:
        assert obtained is True


@needs_fcntl
@pytest.mark.parametrize("wait, expected", [(float("inf"), tc.MAX_LOCK_WAIT_SECONDS), (float("nan"), 0.0), (-3, 0.0), (0, 0.0)])
def test_L9_lock_wait_is_bounded_for_absurd_values(cache, home, fake_time, wait, expected):
    with cache.locked():
        pass
    holder = os.open(os.path.join(private_dir(home), tc.LOCK_NAME), os.O_RDWR)
    try:
        tc.fcntl.flock(holder, tc.fcntl.LOCK_EX | tc.fcntl.LOCK_NB)
        with cache.locked(wait=wait) as obtained:
            assert obtained is False
        assert sum(fake_time.sleeps) == pytest.approx(expected)
    finally:
        os.close(holder)


@needs_fcntl
def test_L9_exception_in_the_locked_body_propagates_and_releases_the_lock(cache):
    with pytest.raises(ValueError, match="caller's own error"):
        with cache.locked():
            raise ValueError("caller's own error")
    with cache.locked(wait=0) as obtained:
        assert obtained is True


def test_L9_without_fcntl_the_lock_yields_false(cache, home, monkeypatch):
    monkeypatch.setattr(tc, "fcntl", None)
    with cache.locked() as obtained:
        assert obtained is False
    cache.put(KEY, TOKEN, 3600)  # the cache itself still works
    assert cache.get(KEY) == TOKEN
    assert not os.path.exists(os.path.join(private_dir(home), tc.LOCK_NAME))


# --- I8: temporary files ------------------------------------------------------------------------------------------


def test_I8_stale_temporary_files_are_removed_on_write(cache, home):
    directory = make_private_dir(home)
    names = {"stale": ".tokens-stale", "fresh": ".tokens-fresh", "other": "other-file"}
    ages = {"stale": tc.STALE_TEMP_SECONDS + 1, "fresh": 10, "other": 3600}
    for label, name in names.items():
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("{}")
        os.utime(path, (NOW - ages[label], NOW - ages[label]))
    cache.put(KEY, TOKEN, 3600)
    assert sorted(os.listdir(directory)) == sorted([".tokens-fresh", "other-file", "tokens.json"])
