# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Connection and authentication options shared by every module (module_utils/_options.py CONNECTION_ARGSPEC).
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of the Cloud Partner Portal API, as scheme, host and optional port.
      - Plain C(http://) is refused unless the host is a loopback address (V(localhost), C(127.0.0.0/8), V(::1)),
        so that a bearer token never crosses a network in clear text.
      - If not set, the environment variable E(CLOUDPARTNER_API_URL) is used.
    type: str
    default: https://cloudpartner.azure.com
  api_version:
    description:
      - Version of the API, C(YYYY-MM-DD) with an optional C(-preview) suffix.
      - If not set, the environment variable E(CLOUDPARTNER_API_VERSION) is used.
    type: str
    default: '2017-10-31'
  access_token:
    description:
      - A ready bearer token for C(https://cloudpartner.azure.com). When given, no token is requested
        and O(tenant_id), O(client_id) and O(client_secret) are ignored.
      - Whitespace around the token (a trailing newline from a file or a vault) is dropped. A token with whitespace,
        control or non-ASCII characters inside is refused before any request, and the message does not show it.
      - A given token is never renewed; if the service rejects it (for example because it expired during a long wait) the task fails.
      - If not set, the environment variable E(CLOUDPARTNER_ACCESS_TOKEN) is used.
    type: str
  tenant_id:
    description:
      - Entra ID tenant of the service principal, as a GUID or a domain name.
      - If not set, the environment variables E(CLOUDPARTNER_TENANT_ID), E(AZURE_TENANT) and E(AZURE_TENANT_ID) are used, in this order.
    type: str
  client_id:
    description:
      - Application (client) ID of the service principal that was added to the publisher account.
      - If not set, the environment variables E(CLOUDPARTNER_CLIENT_ID) and E(AZURE_CLIENT_ID) are used, in this order.
    type: str
  client_secret:
    description:
      - Client secret of the service principal (its value, not its ID).
      - If not set, the environment variables E(CLOUDPARTNER_CLIENT_SECRET), E(AZURE_SECRET) and E(AZURE_CLIENT_SECRET) are used, in this order.
    type: str
  authority_host:
    description:
      - Entra ID login host that issues the token, HTTPS only; the authority is C(<authority_host>/<tenant_id>).
        A trailing slash is accepted.
      - Its OpenID configuration and token requests are retried like API requests (see O(retries)), and never follow a redirect.
      - If not set, the environment variables E(CLOUDPARTNER_AUTHORITY_HOST) and E(AZURE_AUTHORITY_HOST) are used, in this order.
    type: str
    default: https://login.microsoftonline.com
  validate_certs:
    description:
      - Whether to verify TLS certificates of the API and of the authority.
      - V(false) turns verification off for both, even when E(REQUESTS_CA_BUNDLE) or E(CURL_CA_BUNDLE) is set,
        and then no token is kept in the token cache (see O(token_cache)). Use it only for test servers; prefer O(ca_path).
      - If not set, the environment variable E(CLOUDPARTNER_VALIDATE_CERTS) is used.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of CA certificates used to verify the API and the authority.
      - It wins over E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE).
      - If not set, the environment variable E(CLOUDPARTNER_CA_PATH) is used.
    type: path
  timeout:
    description:
      - Seconds one HTTP request may take as a whole, from connecting to the last byte of the answer;
        a server that sends its answer slowly does not stretch it. Answers larger than 8 MiB are refused.
      - If not set, the environment variable E(CLOUDPARTNER_TIMEOUT) is used.
    type: int
    default: 30
  retries:
    description:
      - How many times a request to the API or to the authority is retried after HTTP 429, 500, 502, 503 or 504,
        a connection error or a timeout, with exponential backoff and jitter. A C(Retry-After) header is honoured.
        TLS errors, redirects and other HTTP errors are not retried.
      - If not set, the environment variable E(CLOUDPARTNER_RETRIES) is used.
    type: int
    default: 5
  token_cache:
    description:
      - Keep tokens obtained with client credentials on disk between tasks, so that the following tasks of a play, and
        parallel forks, reuse one token instead of each requesting its own (every module run is a new process).
      - What is kept, in C(azure_marketplace.cloudpartner/tokens.json) under the cache home (see O(token_cache_dir)), is the
        bearer token for C(https://cloudpartner.azure.com) with its expiry, per authority and client ID. It is used while it
        stays valid for more than 5 minutes, and removed after it expired on the next write; nothing is kept for longer than 24 hours.
        No secret and no hash of the secret is kept.
      - The directory is created by the module with mode C(0700) and the file with mode C(0600), so only the same Unix user
        can read them (but any process of that user can, including other playbooks run by the same account).
        The module never changes the mode or owner of anything; when the directory is not the user's own C(0700)
        directory, or no absolute cache home can be found, nothing is kept.
      - Nothing is kept with O(access_token) or with O(validate_certs=false).
      - If not set, the environment variable E(CLOUDPARTNER_TOKEN_CACHE) is used.
    type: bool
    default: true
  token_cache_dir:
    description:
      - Absolute directory (the cache home) under which the module keeps its private directory
        C(azure_marketplace.cloudpartner) for the token cache, see O(token_cache).
      - If not set, the environment variable E(CLOUDPARTNER_TOKEN_CACHE_DIR) is used, then E(XDG_CACHE_HOME), then C(.cache)
        under E(HOME) or under the home directory of the user's account, whichever is first an absolute path.
      - A relative path is refused before any request.
    type: path
notes:
  - Credentials are tried in this order. O(access_token) when set; otherwise O(tenant_id), O(client_id) and O(client_secret)
    through the MSAL client-credentials flow with scope C(https://cloudpartner.azure.com/.default).
    An explicit option always beats an environment variable, and E(CLOUDPARTNER_*) variables beat E(AZURE_*) ones.
    An environment variable set to an empty value counts as not set, and does not hide the variables after it.
  - E(AZURE_TENANT), E(AZURE_CLIENT_ID) and E(AZURE_SECRET) are what the AWX / Automation Platform
    C(Microsoft Azure Resource Manager) credential injects, so that credential works as is.
  - The bearer token is sent only to the scheme, host and port of O(api_url); redirects are never followed, for the API
    and for the authority. After the service rejects a token (HTTP 401), a task requests at most one fresh token.
  - A plain C(http://) (loopback) O(api_url) is never reached through a proxy. For HTTPS, the proxy variables
    E(HTTPS_PROXY) and E(NO_PROXY) are honoured. C(~/.netrc) is never used.
  - Text from the service that reaches a message or a warning is masked like every secret and shortened.
  - Environment variables are read on the host that runs the module; run these modules on V(localhost).
requirements:
  - python 3.11, 3.12 or 3.13
  - requests >= 2.32.4
  - msal >= 1.31.0 (only when a token is requested with client credentials)
  - urllib3 >= 2.6.0
"""
