# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Counts how often each action ran in a playbook, for benchmarks/bench.py (not part of the collection's API).

Enabled by bench.py with ANSIBLE_CALLBACK_PLUGINS=benchmarks/callback_plugins and
ANSIBLE_CALLBACKS_ENABLED=bench_module_runs; writes {action: runs} as JSON to $CLOUDPARTNER_BENCH_RUNS_FILE
when the playbook ends. A loop counts once per item that ran; skipped tasks and items do not count.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_module_runs
type: aggregate
short_description: Count the runs of each action (benchmarks only)
description:
  - Writes how often each action ran to the file named by E(CLOUDPARTNER_BENCH_RUNS_FILE) at the end of the playbook.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_module_runs"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, int] = {}

    def _count(self, result, item: bool = False) -> None:
        # A loop's final result (with its "results" list) only sums up the items already counted.
        if not item and "results" in getattr(result, "_result", {}):
            return
        action = result._task.action  # pylint: disable=protected-access
        self.runs[action] = self.runs.get(action, 0) + 1

    def v2_runner_on_ok(self, result) -> None:
        self._count(result)

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._count(result)

    def v2_runner_item_on_ok(self, result) -> None:
        self._count(result, item=True)

    def v2_runner_item_on_failed(self, result) -> None:
        self._count(result, item=True)

    def v2_playbook_on_stats(self, stats) -> None:
        path = os.environ.get("CLOUDPARTNER_BENCH_RUNS_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(self.runs, handle)
