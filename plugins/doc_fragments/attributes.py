# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: none
"""

    ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/azure_marketplace.cloudpartner.cloudpartner) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - azure_marketplace.cloudpartner.cloudpartner
"""

    CHECK_MODE_READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
    details: This module only reads; it does the same in check mode.
"""
