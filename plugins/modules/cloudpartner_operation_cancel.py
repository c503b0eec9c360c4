#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloudpartner_operation_cancel
short_description: Cancel the operation in progress on an Azure Marketplace offer
version_added: 0.1.0
author:
  - Cloud Partner collection maintainers (@azure-marketplace)
description:
  - Cancels the publish or go-live operation that is in progress on one offer, through the Cloud Partner Portal API
    (C(POST /api/publishers/{publisherId}/offers/{offerId}/cancel)).
  - The module first reads the offer's running submission, so it is idempotent. It reports C(changed) only when
    it really asked for a cancel, and C(ok) when nothing runs or a cancellation is already under way.
  - A submission counts as in progress when its state is set and is not one of the terminal states
    (V(completed), V(complete), V(succeeded), V(canceled), V(cancelled), V(failed)), so V(notStarted) and states
    the module does not know yet count too, as they do while waiting.
  - The module reads the operation's C(cancellationRequestState) before it sends anything. When it says that a
    cancellation is already under way (V(cancelRequested), V(cancelling), V(canceling), V(cancellationRequested),
    V(cancelInProgress), V(cancellationInProgress); case, spaces, V(-) and V(_) ignored), nothing is sent and the
    task reports C(ok) (with O(wait=true), after waiting for the operation to end). When it holds any other value than
    V(canCancel) (for example V(cannotCancel)), the service does not allow cancelling the operation now. Then nothing is
    sent, nothing is waited for, and the task fails unchanged with a message naming the state. An absent state counts
    as V(canCancel).
  - The cancel request is not retried blindly. When its answer is lost (connection error, timeout, HTTP 429 or 5xx),
    the module waits a moment and reads the operation again. If it shows the cancellation (under way, or the operation
    has ended) the task reports C(changed), without RV(status_code), and the request is not sent again; otherwise the
    request is repeated, at most O(retries) times, each time after such a read. A 4xx answer to a repeated request
    gets one more read before the task fails, since the first request may have done the work.
  - After an accepted cancel (HTTP 202) it can wait until the operation ends, polling the location the service returns.
options:
  operation_id:
    description:
      - GUID of the operation to cancel. When set, the module checks, just before it sends the cancel request, that this
        is the operation in progress; if it is not, nothing is sent and the task reports C(ok).
      - This is a best-effort check, not a guarantee. The API's cancel request names no operation and cancels whatever
        is in progress, so an operation that starts between the check and the request would be the one cancelled.
    type: str
  notification_emails:
    description:
      - E-mail addresses the service notifies about the cancellation, sent as a comma-separated
        C(metadata.notification-emails). Offers migrated to Partner Center ignore it.
    type: list
    elements: str
  wait:
    description:
      - After the service accepted the cancel (HTTP 202), poll the operation until it ends.
      - Also waits for the end when a cancellation was already under way, or when the answer to the cancel request
        was lost and the operation shows the cancellation.
      - Never waits when the service does not allow cancelling the operation (the task fails at once).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait for the operation to end when O(wait=true). Must be greater than 0.
      - When it runs out the task fails, reporting C(changed) if the cancel was sent, with the last known state.
      - Every poll request is given at most the time left before it, whatever O(timeout) says; the last poll starts
        shortly before the deadline.
        A fresh token needed during the wait is requested as usual, bounded by O(timeout), O(retries) and the
        authority's C(Retry-After) (at most 300 seconds per retry), not by this deadline.
    type: int
    default: 900
  wait_sleep:
    description:
      - Seconds between two polls when the service sends no C(Retry-After) header; a larger C(Retry-After) wins.
    type: int
    default: 10
extends_documentation_fragment:
  - azure_marketplace.cloudpartner.connection
  - azure_marketplace.cloudpartner.offer
  - azure_marketplace.cloudpartner.attributes
  - azure_marketplace.cloudpartner.attributes.action_group
attributes:
  check_mode:
    support: full
    details: Reads the offer's state as in a real run and reports what would be done; the cancel request is not sent.
  idempotent:
    description: Running the task again once the operation is cancelled reports C(ok) and sends nothing.
    support: full
seealso:
  - name: Cancel operation API
    description: The Cloud Partner Portal API reference for this call.
    link: https://learn.microsoft.com/en-us/azure/marketplace/cloud-partner-portal-api-cancel-operations
"""

EXAMPLES = r"""
- name: Cancel whatever is in progress on an offer and wait until it is cancelled
  azure_marketplace.cloudpartner.cloudpartner_operation_cancel:
    publisher_id: contoso
    offer_id: contoso-vm-offer
    tenant_id: "{{ cloudpartner_tenant_id }}"
    client_id: "{{ cloudpartner_client_id }}"
    client_secret: "{{ cloudpartner_client_secret }}"
    wait: true
  register: cancel_result

- name: Cancel one operation only, and tell people about it
  azure_marketplace.cloudpartner.cloudpartner_operation_cancel:
    publisher_id: contoso
    offer_id: contoso-vm-offer
    operation_id: 5a63deb5-925b-4ee0-938b-7c86fbf287c5
    notification_emails:
      - release@contoso.com
      - oncall@contoso.com

- name: Set the credentials once for every module of the collection (or use AWX's Azure credential)
  module_defaults:
    group/azure_marketplace.cloudpartner.cloudpartner:
      tenant_id: "{{ cloudpartner_tenant_id }}"
      client_id: "{{ cloudpartner_client_id }}"
      client_secret: "{{ cloudpartner_client_secret }}"
  block:
    - name: Would cancel (check mode sends no cancel request)
      azure_marketplace.cloudpartner.cloudpartner_operation_cancel:
        publisher_id: contoso
        offer_id: contoso-vm-offer
      check_mode: true
"""

RETURN = r"""
msg:
  description: What happened, in one or two sentences.
  returned: always
  type: str
  sample: Cancellation of operation 5a63deb5-925b-4ee0-938b-7c86fbf287c5 on offer contoso/contoso-vm-offer was accepted (HTTP 202).
status_code:
  description:
    - HTTP status of the answer to the cancel request, V(200) (cancelled at once) or V(202) (accepted).
    - When the task fails because the service refused the cancel request, the HTTP status of that refusal.
    - Not returned when the answer was lost and the module found afterwards that the cancellation had been received.
  returned: when the service answered the cancel request
  type: int
  sample: 202
operation:
  description:
    - Latest known state of the targeted operation, as the API returned it.
    - Without O(wait), this is the state read before the cancel was sent (for example C(status) V(running)),
      or, when the answer to the cancel was lost, the state read afterwards that shows the cancellation;
      with O(wait), the state in which the operation ended.
    - The operation object (C(status), C(cancellationRequestState), C(steps), ...) once it was read;
      the submission entry of the submissions list (C(id), C(submissionState), ...) when only the list was read.
  returned: when an operation is in progress or was waited for
  type: dict
  sample:
    id: 5a63deb5-925b-4ee0-938b-7c86fbf287c5
    status: canceled
    cancellationRequestState: cancelRequested
    submissionType: publish
operation_id:
  description:
    - ID of the operation in progress that the task looked at (and cancelled, when the task reports a change),
      as the service spells it.
    - Also returned when the task fails after the operation was read, for example when the service does not allow
      cancelling it.
  returned: when an operation is in progress
  type: str
  sample: 5a63deb5-925b-4ee0-938b-7c86fbf287c5
operation_location:
  description:
    - Absolute URL of the cancellation operation the service returned with HTTP 202.
    - A location on another origin than O(api_url), or one that is not a valid http(s) URL, is refused and not returned
      (a warning says so), because it must not receive the token; with O(wait=true) the module then waits on the
      submissions list instead.
  returned: when the service answered 202 with a location on the origin of O(api_url)
  type: str
  sample: https://cloudpartner.azure.com/api/publishers/contoso/offers/contoso-vm-offer/operations/5a63deb5-925b-4ee0-938b-7c86fbf287c5?api-version=2017-10-31
elapsed:
  description: Seconds spent waiting for the operation to end.
  returned: when the module waited (also in the result of a failed wait)
  type: float
  sample: 62.4
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._module import run_module
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._operations import CancelRequest, cancel_offer_operation
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._options import OFFER_ARGSPEC, WAIT_ARGSPEC, argument_spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(
            OFFER_ARGSPEC,
            WAIT_ARGSPEC,
            operation_id={"type": "str"},
            notification_emails={"type": "list", "elements": "str"},
        ),
        supports_check_mode=True,
    )
    run_module(module, CancelRequest.from_params, cancel_offer_operation)


if __name__ == "__main__":
    main()
