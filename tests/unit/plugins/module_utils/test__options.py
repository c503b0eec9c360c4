# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import AnsibleFallbackNotFound

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils import _options as opts
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._errors import ValidationError

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b0f4a2c-1111-4222-8333-944445555666"
SECRET = "s3cr3t-Value~with.odd_chars"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOi.given-token"

# The contract's fallbacks, written out here rather than read from the code under test.
CONTRACT_ENV = {
    "api_url": ["CLOUDPARTNER_API_URL"],
    "api_version": ["CLOUDPARTNER_API_VERSION"],
    "access_token": ["CLOUDPARTNER_ACCESS_TOKEN"],
    "tenant_id": ["CLOUDPARTNER_TENANT_ID", "AZURE_TENANT", "AZURE_TENANT_ID"],
    "client_id": ["CLOUDPARTNER_CLIENT_ID", "AZURE_CLIENT_ID"],
    "client_secret": ["CLOUDPARTNER_CLIENT_SECRET", "AZURE_SECRET", "AZURE_CLIENT_SECRET"],
    "authority_host": ["CLOUDPARTNER_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"],
}
# Typed options with one variable each (contract: so that an AWX custom credential can carry them).
CONTRACT_TYPED_ENV = {
    "validate_certs": ("CLOUDPARTNER_VALIDATE_CERTS", "false", False),
    "ca_path": ("CLOUDPARTNER_CA_PATH", "/etc/pki/corp-ca.pem", "/etc/pki/corp-ca.pem"),
    "timeout": ("CLOUDPARTNER_TIMEOUT", "12", 12),
    "retries": ("CLOUDPARTNER_RETRIES", "0", 0),
}


def module_spec():
    return opts.argument_spec(
        opts.OFFER_ARGSPEC,
        opts.WAIT_ARGSPEC,
        operation_id={"type": "str"},
        notification_emails={"type": "list", "elements": "str"},
    )


def validate(params, spec=None):
    result = ArgumentSpecValidator(spec or module_spec()).validate(dict({"publisher_id": "contoso", "offer_id": "vm"}, **params))
    assert not result.error_messages, result.error_messages
    return result


def validated(params):
    return validate(params).validated_parameters


def connection(params):
    return opts.ConnectionOptions.from_params(validated(params))


# ---------------------------------------------------------------- argument specs


def test_argspec_defaults():
    params = validated({"access_token": TOKEN})
    assert params["api_url"] == "https://cloudpartner.azure.com"
    assert params["api_version"] == "2017-10-31"
    assert params["authority_host"] == "https://login.microsoftonline.com"
    assert params["validate_certs"] is True
    assert params["ca_path"] is None
    assert params["timeout"] == 30
    assert params["retries"] == 5
    assert params["wait"] is False
    assert params["wait_timeout"] == 900
    assert params["wait_sleep"] == 10
    for name in ("tenant_id", "client_id", "client_secret", "operation_id", "notification_emails"):
        assert params[name] is None


def test_argspec_marks_secrets_no_log():
    spec = module_spec()
    assert spec["access_token"].get("no_log") is True
    assert spec["client_secret"].get("no_log") is True
    for name in ("tenant_id", "client_id", "api_url", "publisher_id", "offer_id"):
        assert not spec[name].get("no_log")


def test_argspec_fallbacks_follow_the_contract():
    spec = opts.argument_spec()
    for option, names in CONTRACT_ENV.items():
        assert spec[option]["fallback"][1] == names, option
    for option, (name, _value, _typed) in CONTRACT_TYPED_ENV.items():
        assert spec[option]["fallback"][1] == [name], option


@pytest.mark.parametrize("option", sorted(CONTRACT_TYPED_ENV))
def test_transport_options_come_from_the_environment_typed(monkeypatch, option):
    # maintainer review 7: ca_path, validate_certs, timeout and retries had no environment variable
    name, value, typed = CONTRACT_TYPED_ENV[option]
    monkeypatch.setenv(name, value)
    assert validated({})[option] == typed
    monkeypatch.setenv(name, "")
    assert validated({})[option] == opts.argument_spec()[option].get("default")


def test_argument_spec_returns_copies_and_module_options_win():
    spec = opts.argument_spec(opts.OFFER_ARGSPEC, timeout={"type": "int", "default": 60})
    spec["api_url"]["default"] = "https://changed.example"
    spec["publisher_id"]["required"] = False
    assert opts.CONNECTION_ARGSPEC["api_url"]["default"] == "https://cloudpartner.azure.com"
    assert opts.OFFER_ARGSPEC["publisher_id"]["required"] is True
    assert spec["timeout"]["default"] == 60
    assert opts.CONNECTION_ARGSPEC["timeout"]["default"] == 30


def test_required_offer_options():
    result = ArgumentSpecValidator(module_spec()).validate({"access_token": TOKEN})
    assert result.error_messages
    assert "publisher_id" in " ".join(result.error_messages)


# ---------------------------------------------------------------- environment fallbacks


@pytest.mark.parametrize("option", sorted(CONTRACT_ENV))
def test_env_fallbacks_in_order(monkeypatch, option):
    names = CONTRACT_ENV[option]
    for index, name in enumerate(names):
        monkeypatch.setenv(name, f"value-from-{index}")
    # each variable beats the ones after it
    for index, name in enumerate(names):
        assert validated({})[option] == f"value-from-{index}", name
        monkeypatch.delenv(name)
    assert validated({})[option] == opts.argument_spec()[option].get("default")


@pytest.mark.parametrize("option", sorted(CONTRACT_ENV))
def test_explicit_option_beats_every_env_var(monkeypatch, option):
    for name in CONTRACT_ENV[option]:
        monkeypatch.setenv(name, "from-env")
    assert validated({option: "explicit"})[option] == "explicit"


def test_cloudpartner_beats_azure(monkeypatch):
    monkeypatch.setenv("AZURE_TENANT", "azure.onmicrosoft.com")
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111")
    monkeypatch.setenv("AZURE_SECRET", "azure-secret")
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.azure.example")
    monkeypatch.setenv("CLOUDPARTNER_TENANT_ID", TENANT)
    monkeypatch.setenv("CLOUDPARTNER_CLIENT_ID", CLIENT)
    monkeypatch.setenv("CLOUDPARTNER_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("CLOUDPARTNER_AUTHORITY_HOST", "https://login.cloudpartner.example")
    options = connection({})
    assert (options.tenant_id, options.client_id, options.client_secret) == (TENANT, CLIENT, SECRET)
    assert options.authority_host == "https://login.cloudpartner.example"


def test_awx_azure_credential_is_enough(monkeypatch):
    # what AWX's built-in "Microsoft Azure Resource Manager" credential injects
    monkeypatch.setenv("AZURE_TENANT", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_SECRET", SECRET)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "ignored")
    options = connection({})
    assert (options.tenant_id, options.client_id, options.client_secret) == (TENANT, CLIENT, SECRET)
    assert options.access_token is None


def test_azure_identity_names_work_too(monkeypatch):
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    options = connection({})
    assert (options.tenant_id, options.client_id, options.client_secret) == (TENANT, CLIENT, SECRET)


@pytest.mark.parametrize("option", ["tenant_id", "client_id", "client_secret", "authority_host"])
def test_empty_env_var_does_not_hide_the_next_one(monkeypatch, option):
    first, *others = CONTRACT_ENV[option]
    monkeypatch.setenv(first, "")
    monkeypatch.setenv(others[-1], "from-later-var")
    assert validated({})[option] == "from-later-var"


def test_empty_cloudpartner_tenant_does_not_hide_awx_tenant(monkeypatch):
    # what an AWX custom credential with a blank field injects next to the Azure credential
    monkeypatch.setenv("CLOUDPARTNER_TENANT_ID", "")
    monkeypatch.setenv("AZURE_TENANT", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_SECRET", SECRET)
    assert connection({}).tenant_id == TENANT


def test_env_fallback_skips_empty_variables(monkeypatch):
    monkeypatch.setenv("CP_UNIT_A", "")
    monkeypatch.setenv("CP_UNIT_B", "b")
    monkeypatch.setenv("CP_UNIT_C", "c")
    assert opts.nonempty_env_fallback("CP_UNIT_MISSING", "CP_UNIT_A", "CP_UNIT_B", "CP_UNIT_C") == "b"
    with pytest.raises(AnsibleFallbackNotFound):
        opts.nonempty_env_fallback("CP_UNIT_MISSING", "CP_UNIT_A")


def test_all_env_vars_empty_means_unset(monkeypatch):
    for name in CONTRACT_ENV["client_secret"]:
        monkeypatch.setenv(name, "")
    assert validated({})["client_secret"] is None


def test_token_cache_options(monkeypatch, tmp_path):
    params = validated({"access_token": TOKEN})
    assert params["token_cache"] is True
    assert params["token_cache_dir"] is None
    monkeypatch.setenv("CLOUDPARTNER_TOKEN_CACHE", "false")
    monkeypatch.setenv("CLOUDPARTNER_TOKEN_CACHE_DIR", str(tmp_path / "cache-home"))
    params = validated({"access_token": TOKEN})
    assert params["token_cache"] is False
    assert params["token_cache_dir"] == str(tmp_path / "cache-home")
    assert validated({"token_cache": True})["token_cache"] is True


def test_token_cache_home_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    creds = {"tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET}
    assert connection(creds).token_cache_home == str(tmp_path / "xdg")
    assert connection(dict(creds, token_cache_dir=str(tmp_path / "own"))).token_cache_home == str(tmp_path / "own")
    assert connection(dict(creds, token_cache=False)).token_cache_home is None


def test_a_relative_token_cache_dir_is_refused(monkeypatch, tmp_path):
    # security review L6: a relative location put live tokens into the project directory
    monkeypatch.chdir(tmp_path)
    creds = {"tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET}
    with pytest.raises(ValidationError) as info:
        opts.ConnectionOptions.from_params(dict(validated(creds), token_cache_dir="relative/dir"))
    assert "absolute" in info.value.message


def test_no_cache_home_without_an_absolute_home(monkeypatch, tmp_path):
    # security review L6: with HOME unset (and no passwd entry) the cache landed in ./~/.cache
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", "~")

    def no_passwd_entry(uid):
        raise KeyError(uid)

    monkeypatch.setattr("pwd.getpwuid", no_passwd_entry)
    monkeypatch.chdir(tmp_path)
    creds = {"tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET}
    assert connection(creds).token_cache_home is None


@pytest.mark.parametrize("value", ["tok\n", "  tok  ", "\ttok\r\n"])
def test_access_token_whitespace_around_is_dropped(value):
    # security review L3: a trailing newline broke the header and echoed the token
    assert connection({"access_token": value.replace("tok", TOKEN)}).access_token == TOKEN


@pytest.mark.parametrize("inside", [" ", "\n", "\r\n", "\x00", "\u00e9"])
def test_access_token_with_whitespace_or_controls_inside_is_refused_without_echo(inside):
    token = f"{TOKEN[:8]}{inside}{TOKEN[8:]}"
    with pytest.raises(ValidationError) as info:
        connection({"access_token": token})
    assert TOKEN[:8] not in info.value.message and TOKEN[8:] not in info.value.message
    assert "not shown" in info.value.message


def test_secrets_from_env_are_no_log_values(monkeypatch):
    monkeypatch.setenv("AZURE_SECRET", SECRET)
    monkeypatch.setenv("CLOUDPARTNER_ACCESS_TOKEN", TOKEN)
    result = validate({})
    assert SECRET in result._no_log_values  # pylint: disable=protected-access
    assert TOKEN in result._no_log_values  # pylint: disable=protected-access


def test_env_api_url_and_version(monkeypatch):
    monkeypatch.setenv("CLOUDPARTNER_API_URL", "http://127.0.0.1:41002/")
    monkeypatch.setenv("CLOUDPARTNER_API_VERSION", "2016-08-01-preview")
    options = connection({"access_token": TOKEN})
    assert options.api_url == "http://127.0.0.1:41002"
    assert options.api_version == "2016-08-01-preview"


# ---------------------------------------------------------------- ConnectionOptions


def test_access_token_alone_is_enough():
    options = connection({"access_token": TOKEN})
    assert options.access_token == TOKEN
    assert options.tenant_id is None and options.client_id is None and options.client_secret is None
    assert options.api_url == "https://cloudpartner.azure.com"
    assert options.verify is True
    assert (options.timeout, options.retries) == (30, 5)


def test_access_token_from_env(monkeypatch):
    monkeypatch.setenv("CLOUDPARTNER_ACCESS_TOKEN", TOKEN)
    assert connection({}).access_token == TOKEN


def test_missing_credentials_names_options_and_env_vars():
    with pytest.raises(ValidationError) as info:
        connection({})
    message = info.value.message
    for word in ["access_token", "CLOUDPARTNER_ACCESS_TOKEN"] + [
        name for option in ("tenant_id", "client_id", "client_secret") for name in [option] + CONTRACT_ENV[option]
    ]:
        assert word in message, word
    assert SECRET not in message


def test_partial_credentials_name_only_what_is_missing():
    with pytest.raises(ValidationError) as info:
        connection({"tenant_id": TENANT, "client_secret": SECRET})
    message = info.value.message
    assert "Missing: client_id" in message
    assert "AZURE_CLIENT_ID" in message
    assert "AZURE_SECRET" not in message
    assert SECRET not in message


def test_empty_strings_count_as_missing():
    with pytest.raises(ValidationError, match="client_secret"):
        connection({"tenant_id": TENANT, "client_id": CLIENT, "client_secret": "", "access_token": ""})


def test_client_credentials_are_validated():
    assert connection({"tenant_id": "contoso.onmicrosoft.com", "client_id": CLIENT.upper(), "client_secret": SECRET}).client_id == CLIENT.upper()
    with pytest.raises(ValidationError, match="client_id"):
        connection({"tenant_id": TENANT, "client_id": "my-app", "client_secret": SECRET})
    with pytest.raises(ValidationError, match="tenant_id"):
        connection({"tenant_id": "../common", "client_id": CLIENT, "client_secret": SECRET})


def test_repr_hides_secrets():
    options = connection({"access_token": TOKEN, "tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET})
    for text in (repr(options), str(options), f"{options}", repr([options])):
        assert TOKEN not in text
        assert SECRET not in text
    assert CLIENT in repr(options)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, True),
        ({"validate_certs": False}, False),
        ({"validate_certs": False, "ca_path": "/does/not/exist.pem"}, False),
    ],
)
def test_verify(params, expected):
    assert connection(dict(params, access_token=TOKEN)).verify is expected


def test_verify_with_ca_path(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("pem")
    assert connection({"access_token": TOKEN, "ca_path": str(bundle)}).verify == str(bundle)
    with pytest.raises(ValidationError, match="ca_path"):
        connection({"access_token": TOKEN, "ca_path": str(tmp_path / "nope.pem")})


BAD_CONNECTION_OPTIONS = [
    ({"api_url": "http://cloudpartner.azure.com"}, "api_url"),
    ({"api_url": "https://cloudpartner.azure.com/api"}, "api_url"),
    ({"api_version": "2017-13-01"}, "api_version"),
    ({"authority_host": "http://localhost:8443"}, "authority_host"),
    ({"authority_host": "https://login.microsoftonline.com/tenant"}, "authority_host"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": 3601}, "timeout"),
    ({"retries": -1}, "retries"),
    ({"retries": 21}, "retries"),
]


def test_connection_options_reject():
    problems = []
    for params, option in BAD_CONNECTION_OPTIONS:
        try:
            connection(dict(params, access_token=TOKEN))
            problems.append((params, "accepted"))
        except ValidationError as error:
            if option not in error.message:
                problems.append((params, error.message))
    assert not problems


def test_connection_option_normalisation():
    options = connection({"access_token": TOKEN, "api_url": "HTTPS://CloudPartner.Azure.com/", "authority_host": "https://Login.Example.test/"})
    assert options.api_url == "https://cloudpartner.azure.com"
    assert options.authority_host == "https://login.example.test"


# ---------------------------------------------------------------- offer and wait options


def test_offer_ref():
    offer = opts.OfferRef.from_params({"publisher_id": "contoso", "offer_id": "vm-offer"})
    assert offer.path == "/api/publishers/contoso/offers/vm-offer"
    assert str(offer) == "contoso/vm-offer"


@pytest.mark.parametrize("publisher, offer", [("a/b", "vm"), ("contoso", ".."), ("contoso", None), ("", "vm"), ("contoso", "vm?x")])
def test_offer_ref_rejects(publisher, offer):
    with pytest.raises(ValidationError):
        opts.OfferRef.from_params({"publisher_id": publisher, "offer_id": offer})


def test_wait_options():
    wait = opts.WaitOptions.from_params(validated({}))
    assert (wait.enabled, wait.timeout, wait.sleep) == (False, 900, 10)
    wait = opts.WaitOptions.from_params({"wait": True, "wait_timeout": 5, "wait_sleep": 1})
    assert (wait.enabled, wait.timeout, wait.sleep) == (True, 5, 1)


@pytest.mark.parametrize("params, option", [({"wait_timeout": 0}, "wait_timeout"), ({"wait_timeout": -5}, "wait_timeout"), ({"wait_sleep": 0}, "wait_sleep")])
def test_wait_options_reject(params, option):
    with pytest.raises(ValidationError, match=option):
        opts.WaitOptions.from_params(dict({"wait": True, "wait_timeout": 900, "wait_sleep": 10}, **params))


@pytest.mark.parametrize("value", ["  ", "\n", " \t\r\n "])
def test_an_access_token_of_whitespace_only_is_refused_not_ignored(value):
    # security review of this change (I2): it counted as no token, and client credentials were used silently
    with pytest.raises(ValidationError) as info:
        connection({"access_token": value, "tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET})
    assert "empty once whitespace is removed" in info.value.message
