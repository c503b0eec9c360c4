# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _token_cache as tc

AUTHORITY = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b0f4a2c-1111-4222-8333-944445555666"
SCOPE = "https://cloudpartner.azure.com/.default"
SECRET = "Q~s3cr3t.VALUE_123"


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "cache-dir" / "tokens.json")


@pytest.fixture
def clock():
    return Clock()


def key(**change):
    values = {"authority": AUTHORITY, "client_id": CLIENT, "scope": SCOPE, "client_secret": SECRET}
    values.update(change)
    return tc.cache_key(**values)


def test_default_path_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tc.default_path() == str(tmp_path / "xdg" / "ansible-azure_marketplace-cloudpartner" / "tokens.json")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tc.default_path() == str(tmp_path / "home" / ".cache" / "ansible-azure_marketplace-cloudpartner" / "tokens.json")


def test_cache_key():
    base = key()
    assert len(base) == 64 and all(char in "0123456789abcdef" for char in base)
    assert SECRET not in base
    assert key(authority=AUTHORITY.upper(), client_id=CLIENT.upper()) == base
    for change in ({"authority": AUTHORITY + "x"}, {"client_id": CLIENT[:-1] + "7"}, {"scope": "other/.default"}, {"client_secret": SECRET.lower()}):
        assert key(**change) != base, change


def test_round_trip_with_private_modes(path, clock):
    cache = tc.TokenCache(path, clock)
    cache.put(key(), "tok-1", 3599)
    assert cache.get(key()) == "tok-1"
    assert tc.TokenCache(path, clock).get(key()) == "tok-1"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    text = open(path, encoding="utf-8").read()  # pylint: disable=consider-using-with
    assert SECRET not in text
    assert os.listdir(os.path.dirname(path)) == ["tokens.json"]


def test_expiry_margin(path, clock):
    cache = tc.TokenCache(path, clock)
    cache.put(key(), "tok", 3600)
    clock.now += 3600 - tc.MIN_REMAINING_SECONDS - 1
    assert cache.get(key()) == "tok"
    clock.now += 1
    assert cache.get(key()) is None


@pytest.mark.parametrize("expires_in", [None, "soon", object()])
def test_unusable_lifetime_is_not_stored(path, clock, expires_in):
    cache = tc.TokenCache(path, clock)
    cache.put(key(), "tok", expires_in)
    assert cache.get(key()) is None
    assert not os.path.exists(path)


def test_string_lifetime_is_accepted(path, clock):
    cache = tc.TokenCache(path, clock)
    cache.put(key(), "tok", "3599")
    assert cache.get(key()) == "tok"


def test_put_keeps_other_valid_entries_and_prunes_expired(path, clock):
    cache = tc.TokenCache(path, clock)
    cache.put(key(client_secret="a"), "short", 10)
    cache.put(key(client_secret="b"), "long", 3600)
    clock.now += 20
    cache.put(key(), "new", 3600)
    tokens = json.load(open(path, encoding="utf-8"))["tokens"]  # pylint: disable=consider-using-with
    assert sorted(entry["access_token"] for entry in tokens.values()) == ["long", "new"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_file_readable_by_others_is_ignored(path, clock, mode):
    cache = tc.TokenCache(path, clock)
    cache.put(key(), "tok", 3600)
    os.chmod(path, mode)
    assert cache.get(key()) is None


CORRUPT = [
    "not json",
    "\xff\xfe",
    json.dumps([1, 2]),
    json.dumps({"version": 2, "tokens": {}}),
    json.dumps({"version": 1, "tokens": []}),
    json.dumps({"version": 1, "tokens": {"K": "not a dict"}}),
    json.dumps({"version": 1, "tokens": {"K": {"access_token": 5, "expires_on": 2e9}}}),
    json.dumps({"version": 1, "tokens": {"K": {"access_token": "t", "expires_on": "later"}}}),
    json.dumps({"version": 1, "tokens": {"K": {"access_token": "t", "expires_on": True}}}),
    json.dumps({"version": 1, "tokens": {"K": {"access_token": "t"}}}),
    json.dumps({"version": 1, "tokens": {"K": {"access_token": "", "expires_on": 2e9}}}),
]


def write_private(path, content):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.chmod(path, 0o600)


def test_corrupt_files_mean_no_token(path, clock):
    served = []
    for content in CORRUPT:
        write_private(path, content.replace("K", key()))
        token = tc.TokenCache(path, clock).get(key())
        if token is not None:
            served.append((content, token))
    assert not served


def test_put_over_a_corrupt_entry_does_not_fail(path, clock):
    # a damaged entry once made put() raise TypeError, so every token request crashed; it is pruned instead
    crashes = []
    for expires_on in ('"later"', "null", "[1]", "true", "{}"):
        write_private(path, f'{{"version": 1, "tokens": {{"other": {{"access_token": "x", "expires_on": {expires_on}}}}}}}')
        cache = tc.TokenCache(path, clock)
        try:
            cache.put(key(), "tok", 3600)
        except TypeError as error:
            crashes.append((expires_on, str(error)))
        else:
            assert cache.get(key()) == "tok"
            assert list(json.load(open(path, encoding="utf-8"))["tokens"]) == [key()]  # pylint: disable=consider-using-with
    assert not crashes


def test_existing_directory_is_tightened_to_private(path, clock):
    os.makedirs(os.path.dirname(path), mode=0o755)
    os.chmod(os.path.dirname(path), 0o755)  # whatever the umask
    cache = tc.TokenCache(path, clock)
    cache.put(key(), "tok", 3600)
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert cache.get(key()) == "tok"


def test_directory_of_another_user_is_left_alone(path, clock, monkeypatch):
    os.makedirs(os.path.dirname(path), mode=0o755)
    os.chmod(os.path.dirname(path), 0o755)
    real_uid = os.getuid()
    monkeypatch.setattr(tc.os, "getuid", lambda: real_uid + 1)  # the directory now belongs to "someone else"
    cache = tc.TokenCache(path, clock)
    with cache.locked():
        cache.put(key(), "tok", 3600)
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o755
    assert os.listdir(os.path.dirname(path)) == []


def test_unwritable_location_is_silent(tmp_path, clock):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cache = tc.TokenCache(str(blocker / "sub" / "tokens.json"), clock)
    with cache.locked():
        cache.put(key(), "tok", 3600)
    assert cache.get(key()) is None


def test_locked_creates_private_lock_file(path):
    cache = tc.TokenCache(path)
    with cache.locked():
        pass
    if tc.fcntl is not None:
        assert stat.S_IMODE(os.stat(f"{path}.lock").st_mode) == 0o600
    with cache.locked():  # released: can be taken again
        pass
