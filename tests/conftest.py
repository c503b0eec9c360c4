# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared by every pytest run under tests/: temporary files stay inside the checkout."""

from __future__ import annotations

import os


def pytest_configure(config):
    # pytest keeps its last three base directories under /tmp; tests write fake tokens there. Keep them in the
    # checkout (tests/output is ignored by git and by the collection build) unless the caller chose a --basetemp.
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        parent = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output", ".tmp")
        os.makedirs(parent, exist_ok=True)
        config.option.basetemp = os.path.join(parent, "pytest")
