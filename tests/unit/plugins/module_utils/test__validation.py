# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import re
import string
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _validation as check
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import ValidationError

CYRILLIC_O = "\u043e"
GUID = "5a63deb5-925b-4ee0-938b-7c86fbf287c5"


def acceptance_problems(validator, option, cases, **kwargs):
    """Cases (value, expected result) that the validator rejects or returns differently."""
    problems = []
    for value, expected in cases:
        try:
            result = validator(option, value, **kwargs)
        except ValidationError as error:
            problems.append((value, f"rejected: {error.message}"))
        else:
            if result != expected:
                problems.append((value, f"returned {result!r}, expected {expected!r}"))
    return problems


def rejection_problems(validator, option, values, must_contain=(), **kwargs):
    """Values the validator accepts, or rejects with a message that does not name the option (or a required word)."""
    problems = []
    for value in values:
        try:
            result = validator(option, value, **kwargs)
        except ValidationError as error:
            for word in (option,) + tuple(must_contain):
                if word not in error.message:
                    problems.append((value, f"message lacks {word!r}: {error.message}"))
        except Exception as error:  # pylint: disable=broad-exception-caught
            problems.append((value, f"raised {type(error).__name__}: {error}"))
        else:
            problems.append((value, f"accepted as {result!r}"))
    return problems


def same(*values):
    return [(value, value) for value in values]


# ---------------------------------------------------------------- path segments


def test_path_segment_accepts():
    assert not acceptance_problems(check.path_segment, "offer_id", same("contoso", "a.b-c_d", "A", "0", "Contoso-VM_offer.2", ".hidden", "a..b", "x" * 200))


BAD_SEGMENTS = [
    "",
    "/",
    "a/b",
    "..",
    ".",
    "...",
    "a b",
    " contoso",
    "contoso ",
    f"c{CYRILLIC_O}ntoso",  # Cyrillic o: looks like 'contoso'
    "cont\u200boso",  # zero-width space
    "\uff43ontoso",  # full-width c
    "a\n",
    "a\r",
    "a\t",
    "x" * 201,
    "a?b",
    "a#b",
    "a%2fb",
    "%2e%2e",
    "a\\b",
    "a;b",
    "a:b",
    "a@b",
    "a+b",
    None,
    5,
    ["contoso"],
    b"contoso",
]


def test_path_segment_rejects():
    assert not rejection_problems(check.path_segment, "offer_id", BAD_SEGMENTS)


def test_path_segment_message_shows_look_alikes_escaped():
    with pytest.raises(ValidationError) as info:
        check.path_segment("publisher_id", f"c{CYRILLIC_O}ntoso")
    # the Cyrillic letter must be visible as an escape, not as a look-alike
    assert "\\u043e" in info.value.message
    assert CYRILLIC_O not in info.value.message


def test_path_segment_message_truncates_long_values():
    with pytest.raises(ValidationError) as info:
        check.path_segment("offer_id", "/" * 5000)
    assert len(info.value.message) < 400


# ---------------------------------------------------------------- GUIDs and tenants


def test_guid_accepts_and_lowercases():
    cases = [(GUID, GUID), (GUID.upper(), GUID), ("00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000")]
    assert not acceptance_problems(check.guid, "operation_id", cases)


def test_guid_rejects():
    values = ["", "not-a-guid", "{" + GUID + "}", GUID + "\n", GUID[:-1], GUID + "0", GUID.replace("-", ""), GUID.replace("5", "\uff15"), None, 42]
    assert not rejection_problems(check.guid, "operation_id", values)


def test_tenant():
    assert not acceptance_problems(check.tenant, "tenant_id", same(GUID, "contoso.onmicrosoft.com", "contoso", "a-b.example.org"))
    values = ["", "a..b", "-a", "a-", ".a", "a/b", "a b", "common/", f"c{CYRILLIC_O}ntoso.com", "a\n", None]
    assert not rejection_problems(check.tenant, "tenant_id", values)


# ---------------------------------------------------------------- e-mails


def test_email_accepts():
    values = ["jon.doe@contoso.com", "a+b@x-y.example.org", "o'neil@contoso.co.uk", "RELEASE@CONTOSO.COM", "a@b.io", "x_y-z@sub.d0main.net"]
    assert not acceptance_problems(check.email, "notification_emails", same(*values))


BAD_EMAILS = [
    "",
    "jon",
    "jon@",
    "@contoso.com",
    "jon@contoso",
    "a,b@contoso.com",
    "a@contoso.com,b@contoso.com",
    "a@contoso.com;b@contoso.com",
    "a b@contoso.com",
    "jon@contoso.com ",
    "jon@contoso.com\n",
    ".jon@contoso.com",
    "jon.@contoso.com",
    "jo..n@contoso.com",
    "jon@-contoso.com",
    "jon@contoso-.com",
    "jon@contoso..com",
    "jon@contoso.123",
    "jon@10.0.0.1",
    f"jon@c{CYRILLIC_O}ntoso.com",
    "j\u00f6n@contoso.com",
    "jon@contoso.com@evil.com@",
    "x" * 250 + "@contoso.com",
    None,
    7,
]


def test_email_rejects():
    assert not rejection_problems(check.email, "notification_emails", BAD_EMAILS)


def test_email_list():
    assert not check.email_list("notification_emails", None)
    assert not check.email_list("notification_emails", [])
    assert check.email_list("notification_emails", ["a@x.com", "b@y.org"]) == ["a@x.com", "b@y.org"]
    with pytest.raises(ValidationError, match="bad"):
        check.email_list("notification_emails", ["a@x.com", "bad"])


# ---------------------------------------------------------------- api_version


def test_api_version_accepts():
    assert not acceptance_problems(check.api_version, "api_version", same("2017-10-31", "2016-08-01-preview", "2020-02-29"))


def test_api_version_rejects():
    values = [
        "2017-13-01",
        "2017-02-30",
        "2019-02-29",
        "2017-10-31x",
        "2017-10-31\n",
        " 2017-10-31",
        "2017-10-31-",
        "2017-10-31-beta",
        "2017-10-31-preview-preview",
        "17-10-31",
        "2017-1-31",
        "2017/10/31",
        "20171031",
        "\uff12017-10-31",
        "",
        None,
        20171031,
    ]
    assert not rejection_problems(check.api_version, "api_version", values)


# ---------------------------------------------------------------- base_url


def test_is_loopback_host():
    loopback = ["localhost", "LocalHost", "127.0.0.1", "127.255.255.254", "127.1.2.3", "::1", "0:0:0:0:0:0:0:1"]
    other = ["localhost.example.com", "mylocalhost", "128.0.0.1", "10.0.0.1", "0.0.0.0", "::2", "127.0.0.1.nip.io", "cloudpartner.azure.com"]
    assert [host for host in loopback if not check.is_loopback_host(host)] == []
    assert [host for host in other if check.is_loopback_host(host)] == []


def test_base_url_accepts_and_normalises():
    cases = [
        ("https://cloudpartner.azure.com", "https://cloudpartner.azure.com"),
        ("https://cloudpartner.azure.com/", "https://cloudpartner.azure.com"),
        ("HTTPS://CloudPartner.Azure.COM/", "https://cloudpartner.azure.com"),
        ("  https://cloudpartner.azure.com  ", "https://cloudpartner.azure.com"),
        ("https://api.example.test:8443", "https://api.example.test:8443"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://LOCALHOST:8080/", "http://localhost:8080"),
        ("http://127.0.0.1:41002", "http://127.0.0.1:41002"),
        ("http://127.9.9.9", "http://127.9.9.9"),
        ("http://[::1]:5000", "http://[::1]:5000"),
        ("https://[::1]", "https://[::1]"),
    ]
    assert not acceptance_problems(check.base_url, "api_url", cases)


def test_base_url_refuses_clear_text_off_loopback():
    values = [
        "http://cloudpartner.azure.com",
        "http://10.0.0.1:8080",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "http://[::2]",
        "http://0.0.0.0",
    ]
    assert not rejection_problems(check.base_url, "api_url", values, must_contain=("https",))


def test_base_url_rejects():
    values = [
        "https://cloudpartner.azure.com/api",
        "https://cloudpartner.azure.com/api/publishers",
        "https://cloudpartner.azure.com?api-version=2017-10-31",
        "https://cloudpartner.azure.com/?x=1",
        "https://cloudpartner.azure.com#frag",
        "ftp://cloudpartner.azure.com",
        "file:///etc/passwd",
        "cloudpartner.azure.com",
        "//cloudpartner.azure.com",
        "https://",
        "https://:443",
        "https://cloudpartner.azure.com:99999",
        "https://cloudpartner.azure.com:abc",
        "",
        "   ",
        None,
        42,
    ]
    assert not rejection_problems(check.base_url, "api_url", values)


def test_base_url_rejects_userinfo_without_echoing_it():
    values = ["https://user:p4ssw0rd@cloudpartner.azure.com", "https://p4ssw0rd@cloudpartner.azure.com", "http://u:p4ssw0rd@localhost"]
    assert not rejection_problems(check.base_url, "api_url", values, must_contain=("credentials",))
    for value in values:
        with pytest.raises(ValidationError) as info:
            check.base_url("api_url", value)
        assert "p4ssw0rd" not in info.value.message


def test_base_url_https_only():
    values = ["http://localhost", "http://127.0.0.1:8443", "http://[::1]"]
    assert not rejection_problems(check.base_url, "authority_host", values, must_contain=("https",), https_only=True)
    cases = [(value.replace("http:", "https:"), value.replace("http:", "https:")) for value in values]
    assert not acceptance_problems(check.base_url, "authority_host", cases, https_only=True)


def test_base_url_rejects_hosts_that_are_not_host_names():
    # requests would see another host than the one validated ('evil.example' for the backslash cases)
    values = [
        "https://exa mple.com",
        "https://evil.example\\.cloudpartner.azure.com",
        "https://cloudpartner.azure.com\\",
        "https://exa_mple.com",
        "https://-cloudpartner.azure.com",
        "https://cloudpartner..azure.com",
        "https://cloudpartner.azure.com%2eevil.example",
        "https://b\u00fccher.example",
        "https://" + "a" * 64 + ".example",
    ]
    assert not rejection_problems(check.base_url, "api_url", values, must_contain=("valid host",))


# ---------------------------------------------------------------- numbers and files


def test_positive_int():
    for maximum, cases in ((None, same(1, 30, 10**6)), (3600, same(1, 3600))):
        assert not acceptance_problems(check.positive_int, "timeout", cases, maximum=maximum)
    assert not rejection_problems(check.positive_int, "timeout", [0, -1, True, False, "5", 1.5, None])
    assert not rejection_problems(check.positive_int, "timeout", [3601], maximum=3600)


def test_retry_count():
    assert not acceptance_problems(check.retry_count, "retries", same(0, 1, 5, 20))
    assert not rejection_problems(check.retry_count, "retries", [-1, 21, True, "3", 2.0, None])


def test_readable_file(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert check.readable_file("ca_path", str(bundle)) == str(bundle)
    assert not rejection_problems(check.readable_file, "ca_path", [str(tmp_path / "missing.pem"), str(tmp_path)])
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):  # root reads any file
        bundle.chmod(0)
        try:
            assert not rejection_problems(check.readable_file, "ca_path", [str(bundle)])
        finally:
            bundle.chmod(0o600)


# ---------------------------------------------------------------- properties

# Text that is often close to valid, plus anything at all.
_NEAR_SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "._-/ ?#%\n\t\\" + CYRILLIC_O + "\u00e9", max_size=210)
_ANY_TEXT = st.one_of(st.text(max_size=60), _NEAR_SEGMENT)
_DATE_LIKE = st.builds(
    lambda year, month, day, suffix, tail: f"{year:04d}-{month:02d}-{day:02d}{suffix}{tail}",
    st.integers(0, 9999),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["", "-preview", "-Preview", "-beta"]),
    st.sampled_from(["", "", "", "\n", " ", "x"]),
)
_LABEL = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=12)
_EMAIL_LIKE = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.text(alphabet=string.ascii_letters + string.digits + ".+_-',; \u00e9", min_size=1, max_size=20),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.sampled_from(["com", "org", "123", "c\u043em", "io"]),
)
_VALIDATORS = [check.path_segment, check.guid, check.tenant, check.email, check.api_version, check.base_url]


@given(value=_ANY_TEXT)
@example(value="..")
@example(value="a\n")
def test_validators_return_or_raise_validation_error(value):
    for validator in _VALIDATORS:
        try:
            result = validator("opt", value)
        except ValidationError as error:
            assert "opt" in error.message
        else:
            assert isinstance(result, str)


@given(value=_ANY_TEXT)
def test_accepted_path_segment_is_a_safe_url_segment(value):
    try:
        result = check.path_segment("offer_id", value)
    except ValidationError:
        return
    assert result == value
    assert not set(result) & set("/?#%\\")
    assert not any(char.isspace() for char in result)
    assert result.isascii()
    assert 1 <= len(result) <= 200
    assert set(result) != {"."}


@given(value=_DATE_LIKE | st.text(max_size=30))
def test_accepted_api_version_is_strict(value):
    try:
        result = check.api_version("api_version", value)
    except ValidationError:
        return
    assert result == value
    assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?", result)


@given(value=_EMAIL_LIKE | _ANY_TEXT)
def test_accepted_email_has_no_separator_or_space(value):
    try:
        result = check.email("notification_emails", value)
    except ValidationError:
        return
    assert result == value
    assert result.isascii()
    assert "," not in result and ";" not in result
    assert not any(char.isspace() for char in result)
    assert result.count("@") == 1


_URLISH = st.builds(
    lambda scheme, host, port, tail: f"{scheme}://{host}{port}{tail}",
    st.sampled_from(["http", "https", "HTTPS", "ftp"]),
    st.sampled_from(["localhost", "127.0.0.1", "[::1]", "cloudpartner.azure.com", "Example.COM", "10.1.2.3", "u:p@h.example"]),
    st.sampled_from(["", ":443", ":8080", ":0", ":70000", ":x"]),
    st.sampled_from(["", "/", "/api", "?a=1", "#f", "//x"]),
)


@given(value=_URLISH | _ANY_TEXT)
def test_accepted_base_url_is_origin_only_and_idempotent(value):
    try:
        result = check.base_url("api_url", value)
    except ValidationError:
        return
    parts = urlsplit(result)
    assert parts.scheme in ("http", "https")
    assert parts.hostname
    assert parts.path == "" and not parts.query and not parts.fragment
    assert parts.username is None and parts.password is None
    if parts.scheme == "http":
        assert check.is_loopback_host(parts.hostname)
    assert check.base_url("api_url", result) == result
