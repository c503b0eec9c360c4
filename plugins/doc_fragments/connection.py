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
      - A given token cannot be renewed; if it expires during a long wait the task fails.
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
      - Change it for sovereign clouds, for example V(https://login.microsoftonline.us).
      - If not set, the environment variables E(CLOUDPARTNER_AUTHORITY_HOST) and E(AZURE_AUTHORITY_HOST) are used, in this order.
    type: str
    default: https://login.microsoftonline.com
  validate_certs:
    description:
      - Whether to verify TLS certificates of the API and of the authority.
      - V(false) turns verification off even when E(REQUESTS_CA_BUNDLE) or E(CURL_CA_BUNDLE) is set. Use it only for test servers.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of CA certificates used to verify the API and the authority.
      - It wins over E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE); proxy variables such as E(HTTPS_PROXY) and E(NO_PROXY) keep working.
    type: path
  timeout:
    description:
      - Seconds to wait for one HTTP request to be answered.
    type: int
    default: 30
  retries:
    description:
      - How many times a request is retried after HTTP 429, 500, 502, 503 or 504 or a connection error,
        with exponential backoff and jitter. A C(Retry-After) header sent by the service is honoured.
    type: int
    default: 5
  token_cache:
    description:
      - Keep tokens obtained with client credentials in a file, so that the following tasks of a play, and parallel forks,
        reuse one token instead of each requesting its own (every module run is a new process).
      - A cached token is used while it stays valid for more than 5 minutes, and only by tasks with the same
        O(authority_host), O(tenant_id), O(client_id) and O(client_secret). A token rejected with HTTP 401 is replaced.
      - The file holds bearer tokens. It is written with mode C(0600) in a directory of mode C(0700), and ignored if others can read it.
      - Has no effect with O(access_token).
      - If not set, the environment variable E(CLOUDPARTNER_TOKEN_CACHE) is used.
    type: bool
    default: true
  token_cache_path:
    description:
      - File of the token cache, see O(token_cache).
      - If not set, the environment variable E(CLOUDPARTNER_TOKEN_CACHE_PATH) is used, then
        C(ansible-azure_marketplace-cloudpartner/tokens.json) under E(XDG_CACHE_HOME) or C(~/.cache).
    type: path
notes:
  - Credentials are tried in this order. O(access_token) when set; otherwise O(tenant_id), O(client_id) and O(client_secret)
    through the MSAL client-credentials flow with scope C(https://cloudpartner.azure.com/.default).
    An explicit option always beats an environment variable, and E(CLOUDPARTNER_*) variables beat E(AZURE_*) ones.
    An environment variable set to an empty value counts as not set.
  - E(AZURE_TENANT), E(AZURE_CLIENT_ID) and E(AZURE_SECRET) are what the AWX / Automation Platform
    C(Microsoft Azure Resource Manager) credential injects, so that credential works as is.
  - Environment variables are read on the host that runs the module; run these modules on V(localhost).
requirements:
  - python >= 3.11
  - requests
  - msal (only when a token is requested with client credentials)
"""
