# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The offer an operation belongs to (module_utils/_options.py OFFER_ARGSPEC).
    DOCUMENTATION = r"""
options:
  publisher_id:
    description:
      - Publisher ID, for example V(contoso). Letters, digits, V(-), V(_) and V(.) only.
    type: str
    required: true
  offer_id:
    description:
      - Offer ID. Letters, digits, V(-), V(_) and V(.) only.
    type: str
    required: true
"""

    # Only the publisher, for modules that take several offers.
    PUBLISHER = r"""
options:
  publisher_id:
    description:
      - Publisher ID, for example V(contoso). Letters, digits, V(-), V(_) and V(.) only.
    type: str
    required: true
"""
