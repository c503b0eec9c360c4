#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloudpartner_operation_wait
short_description: Wait until operations of Azure Marketplace offers end
version_added: 0.1.0
author:
  - Cloud Partner collection maintainers (@azure-marketplace)
description:
  - Waits, in one task and under one deadline, until every given operation has ended (cancelled, completed or failed),
    polling them in rounds through the Cloud Partner Portal API.
  - Use it after M(azure_marketplace.cloudpartner.cloudpartner_operation_cancel) with
    O(azure_marketplace.cloudpartner.cloudpartner_operation_cancel#module:wait=false) on many offers,
    so that N cancellations taking T seconds each cost about T, not N times T.
    The role C(azure_marketplace.cloudpartner.operation_cancel) does exactly that.
  - Read-only; it never changes anything.
options:
  operations:
    description:
      - The operations to wait for.
    type: list
    elements: dict
    required: true
    suboptions:
      offer_id:
        description:
          - Offer ID. Letters, digits, V(-), V(_) and V(.) only.
        type: str
        required: true
      operation_id:
        description:
          - ID of the operation as the service gives it, for example
            RV(azure_marketplace.cloudpartner.cloudpartner_operation_cancel#module:operation_id).
          - It is not required to be a GUID, but it becomes a segment of the request path, so it may only contain
            letters, digits, V(-), V(_) and V(.) (and not only dots).
        type: str
        required: true
      location:
        description:
          - URL to poll for this operation, for example
            RV(azure_marketplace.cloudpartner.cloudpartner_operation_cancel#module:operation_location).
            It must be on the origin of O(api_url).
          - When not set, C(/api/publishers/{publisherId}/offers/{offerId}/operations/{operationId}) is polled.
        type: str
  wait_timeout:
    description:
      - Seconds to wait for all operations to end. Must be greater than 0.
      - However many operations there are and however slowly the service answers, every poll request is given at most
        the time left, and a round of polls stops when the time is up (the operations it did not reach keep their last
        known status).
        A fresh token needed during the wait is requested as usual, bounded by O(timeout), O(retries) and the
        authority's C(Retry-After) (at most 300 seconds per retry), not by this deadline.
    type: int
    default: 900
  wait_sleep:
    description:
      - Seconds between two polling rounds when the service sends no C(Retry-After) header; a larger C(Retry-After) wins.
    type: int
    default: 10
extends_documentation_fragment:
  - azure_marketplace.cloudpartner.connection
  - azure_marketplace.cloudpartner.offer.publisher
  - azure_marketplace.cloudpartner.attributes
  - azure_marketplace.cloudpartner.attributes.action_group
  - azure_marketplace.cloudpartner.attributes.check_mode_read_only
attributes:
  idempotent:
    description: Reading never changes anything.
    support: full
notes:
  - Transient errors (HTTP 429 and 5xx, connection problems, unreadable answers) while polling are tolerated until the deadline.
    A permanent error for one operation (for example HTTP 404) stops the wait for that operation only; the task then fails
    once the others have ended, and RV(operations) tells which one failed.
  - Requests per round, one GET per operation that has not ended yet.
seealso:
  - module: azure_marketplace.cloudpartner.cloudpartner_operation_cancel
  - module: azure_marketplace.cloudpartner.cloudpartner_operation_info
"""

EXAMPLES = r"""
- name: Ask every offer to cancel, without waiting
  azure_marketplace.cloudpartner.cloudpartner_operation_cancel:
    publisher_id: contoso
    offer_id: "{{ item }}"
  loop: [offer-a, offer-b, offer-c]
  register: cancels

- name: Then wait for all the accepted cancellations at once
  azure_marketplace.cloudpartner.cloudpartner_operation_wait:
    publisher_id: contoso
    operations: "{{ accepted }}"
    wait_timeout: 900
  vars:
    # changed without status_code: the cancel's answer was lost, but the operation showed the cancellation
    accepted: >-
      {%- set ns = namespace(targets=[]) -%}
      {%- for result in cancels.results if result.changed | default(false) and result.status_code | default(202) == 202 -%}
      {%-   set ns.targets = ns.targets + [{'offer_id': result.item, 'operation_id': result.operation_id}] -%}
      {%- endfor -%}
      {{ ns.targets }}

- name: Wait for one operation whose id is known
  azure_marketplace.cloudpartner.cloudpartner_operation_wait:
    publisher_id: contoso
    operations:
      - offer_id: contoso-vm-offer
        operation_id: 5a63deb5-925b-4ee0-938b-7c86fbf287c5
    wait_timeout: 600
    wait_sleep: 15
"""

RETURN = r"""
msg:
  description: What happened.
  returned: always
  type: str
  sample: "All 3 operations ended: 3 cancelled."
operations:
  description: One entry per operation given, in the same order.
  returned: always
  type: list
  elements: dict
  contains:
    offer_id:
      description: The offer ID.
      type: str
      returned: always
    operation_id:
      description: The operation ID, as given.
      type: str
      returned: always
    ended:
      description: Whether the operation has ended (or could not be read any more, see RV(operations[].failed)).
      type: bool
      returned: always
    status:
      description: Last status the operation reported, as the API spells it, for example V(canceled).
      type: str
      returned: once the operation was read
    operation:
      description: Last state of the operation as the API returned it.
      type: dict
      returned: once the operation was read
    failed:
      description: V(true) when the operation could not be read (a permanent error such as HTTP 404).
      type: bool
      returned: on such an error
    msg:
      description: The error for this operation.
      type: str
      returned: on such an error
    last_error:
      description: The transient error of the last poll, while the operation had not ended.
      type: str
      returned: when the last poll of a pending operation failed (also when it was cut short by the deadline)
elapsed:
  description: Seconds spent waiting.
  returned: always
  type: float
  sample: 61.2
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._module import run_module
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._operations import WaitRequest, wait_for_operations
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._options import argument_spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(
            publisher_id={"type": "str", "required": True},
            operations={
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "offer_id": {"type": "str", "required": True},
                    "operation_id": {"type": "str", "required": True},
                    "location": {"type": "str"},
                },
            },
            wait_timeout={"type": "int", "default": 900},
            wait_sleep={"type": "int", "default": 10},
        ),
        supports_check_mode=True,
    )
    run_module(module, WaitRequest.from_params, wait_for_operations)


if __name__ == "__main__":
    main()
