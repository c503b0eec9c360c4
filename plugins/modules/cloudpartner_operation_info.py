#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloudpartner_operation_info
short_description: Read the operations of an Azure Marketplace offer
version_added: 0.1.0
author:
  - Cloud Partner collection maintainers (@azure-marketplace)
description:
  - Reads the operations (submissions) of one offer through the Cloud Partner Portal API, or one operation by its ID.
  - Use it to see what is running before cancelling it with M(azure_marketplace.cloudpartner.cloudpartner_operation_cancel).
  - Read-only; it never changes anything.
options:
  operation_id:
    description:
      - GUID of one operation. When set, RV(operations) holds that operation only, as
        C(GET .../operations/{operationId}) returns it, and O(status) is ignored.
    type: str
  status:
    description:
      - Keep only the submissions in this state, for example V(running). Case, spaces, V(-) and V(_) are ignored.
      - The value is also sent to the service as the C(status) filter.
    type: str
extends_documentation_fragment:
  - azure_marketplace.cloudpartner.connection
  - azure_marketplace.cloudpartner.offer
  - azure_marketplace.cloudpartner.attributes
  - azure_marketplace.cloudpartner.attributes.action_group
  - azure_marketplace.cloudpartner.attributes.check_mode_read_only
attributes:
  idempotent:
    description: Reading never changes anything.
    support: full
seealso:
  - module: azure_marketplace.cloudpartner.cloudpartner_operation_cancel
  - name: Retrieve operations API
    description: The Cloud Partner Portal API reference for this call.
    link: https://learn.microsoft.com/en-us/azure/marketplace/cloud-partner-portal-api-retrieve-operations
"""

EXAMPLES = r"""
- name: What is running on the offer?
  azure_marketplace.cloudpartner.cloudpartner_operation_info:
    publisher_id: contoso
    offer_id: contoso-vm-offer
    status: running
  register: running

- name: Cancel it if something runs
  azure_marketplace.cloudpartner.cloudpartner_operation_cancel:
    publisher_id: contoso
    offer_id: contoso-vm-offer
    operation_id: "{{ running.operations[0].id }}"
  when: running.operations | length > 0

- name: Read one operation with its steps
  azure_marketplace.cloudpartner.cloudpartner_operation_info:
    publisher_id: contoso
    offer_id: contoso-vm-offer
    operation_id: 5a63deb5-925b-4ee0-938b-7c86fbf287c5
  register: operation
"""

RETURN = r"""
operations:
  description:
    - The submissions of the offer as the API returned them (C(id), C(submissionType), C(submissionState), ...),
      or one element, the operation (C(status), C(cancellationRequestState), C(steps), ...), when O(operation_id) is set.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 5a63deb5-925b-4ee0-938b-7c86fbf287c5
      offerId: contoso-vm-offer
      publisherId: contoso
      submissionType: publish
      submissionState: running
      slot: staging
      changedTime: "2026-11-21T09:46:01.179948Z"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._module import run_module
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._operations import InfoRequest, read_operations
from ansible_collections.azure_marketplace.cloudpartner.plugins.module_utils._options import OFFER_ARGSPEC, argument_spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(OFFER_ARGSPEC, operation_id={"type": "str"}, status={"type": "str"}),
        supports_check_mode=True,
    )
    run_module(module, InfoRequest.from_params, read_operations)


if __name__ == "__main__":
    main()
