# -*- coding: utf-8 -*-
# Copyright: (c) 2026, azure_marketplace.cloudpartner contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmarks of the azure_marketplace.cloudpartner collection against the Cloud Partner Portal emulator.

benchmarks/run.sh prepares everything (venvs, the built and installed collection, the emulator) and calls
this script; benchmarks/README.md describes the measurements, their targets and how to read the results.
Every measurement is the wall time of a whole ``ansible-playbook`` process (time.perf_counter around
subprocess.run), repeated and summarised by its median, min and max.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import time
import typing as t
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PLAYBOOKS = BENCH_DIR / "playbooks"
ROLE_TASKS = Path("ansible_collections/azure_marketplace/cloudpartner/roles/operation_cancel/tasks/main.yml")
CANCEL_MODULE = "ansible_collections.azure_marketplace.cloudpartner.plugins.modules.cloudpartner_operation_cancel"
# Environment variables that would change what the playbooks do: dropped, then set explicitly.
FOREIGN_ENV_PREFIXES = ("ANSIBLE_", "CLOUDPARTNER_", "AZURE_")
COLLECTION_PREFIX = "azure_marketplace.cloudpartner."
# The quiet gate: before a measured run, wait while other processes keep more than this share of all CPUs busy.
BUSY_THRESHOLD = 0.35
GATE_SAMPLE_SECONDS = 0.25
GATE_MAX_WAIT_PER_RUN = 15.0


@dataclasses.dataclass
class Plan:
    """What a run measures; --quick shrinks it to a smoke run."""

    reps: int
    overhead_reps: int  # measurement 2: a 150 ms target on a 1.5 s process needs more repetitions
    t_wait: int  # measurement 1: seconds the service takes to cancel
    t_role: int  # measurement 3
    offer_counts: t.List[int]
    token_play_size: int
    token_reps: int
    profile_reps: int
    quick: bool

    # Measurement 3 dominates the run time: full repetitions where the target is (N=10), fewer elsewhere.
    def role_reps(self, count: int) -> int:
        if self.quick or count == 10:
            return self.reps
        return min(self.reps, 3 if count < 10 else 2)

    @property
    def default_role_reps(self) -> int:
        return 1

    def naive_reps(self, count: int) -> int:
        """The naive loop takes about N x (T + 1) seconds, nearly all of it sleeping: its spread is small."""
        if self.quick:
            return self.reps
        if count in (1, 10):
            return min(self.reps, 3)
        return 1


@dataclasses.dataclass
class Run:
    wall: float
    cpu: float
    output: str
    actions: t.Dict[str, int]  # how often each action ran (benchmarks/callback_plugins/bench_module_runs.py)

    @property
    def module_runs(self) -> int:
        """Runs of this collection's modules: each one is a module process."""
        return sum(count for action, count in self.actions.items() if action.startswith(COLLECTION_PREFIX))


@dataclasses.dataclass
class Series:
    """One scenario: its repetitions and whatever else was counted per repetition."""

    key: str
    label: str
    planned: int = 0
    walls: t.List[float] = dataclasses.field(default_factory=list)
    cpus: t.List[float] = dataclasses.field(default_factory=list)
    counts: t.List[int] = dataclasses.field(default_factory=list)  # token requests per repetition
    module_runs: t.List[int] = dataclasses.field(default_factory=list)  # runs of the collection's modules, per repetition
    note: str = ""
    skipped: str = ""

    def add(self, run: Run) -> None:
        self.walls.append(run.wall)
        self.cpus.append(run.cpu)

    @property
    def median(self) -> float:
        return statistics.median(self.walls) if self.walls else float("nan")

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpus) if self.cpus else float("nan")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"median": self.median if self.walls else None}


@dataclasses.dataclass
class Row:
    """One line of the results table."""

    series: Series
    derived: str = ""
    target: str = ""
    met: t.Optional[bool] = None


class BenchmarkError(Exception):
    pass


class Emulator:
    """The emulator's control API (no auth), over HTTPS verified with the emulator's CA."""

    def __init__(self, state_dir: Path) -> None:
        self.info = json.loads((state_dir / "emulator.json").read_text(encoding="utf-8"))
        context = ssl.create_default_context(cafile=self.info["ca_path"])
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
        self.publisher = self.info["publisher_id"]

    def call(self, method: str, path: str, body: t.Any = None) -> t.Any:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(self.info["control_url"] + path, data=data, method=method, headers={"Content-Type": "application/json"})
        with self._opener.open(request, timeout=30) as response:
            payload = response.read()
        return json.loads(payload) if payload.strip() else None

    def put_offer(self, offer: str, scenario: dict) -> None:
        self.call("PUT", f"/offers/{self.publisher}/{offer}", scenario)

    def offer(self, offer: str) -> dict:
        return self.call("GET", f"/offers/{self.publisher}/{offer}")

    def token_requests(self) -> int:
        return int(self.call("GET", "/tokens")["token_requests"])

    def last_seq(self) -> int:
        entries = self.call("GET", "/requests")
        return max((entry["seq"] for entry in entries), default=0)

    def requests_since(self, seq: int) -> t.List[dict]:
        return [entry for entry in self.call("GET", f"/requests?since={seq}") if entry["seq"] > seq]


def median_ms(values: t.Sequence[float]) -> float:
    return statistics.median(values) * 1000.0


def summary(samples: t.Sequence[t.Tuple[float, float, t.Any]]) -> t.Dict[str, float]:
    """Milliseconds: fastest and median wall time, median CPU time."""
    walls, cpus = [sample[0] for sample in samples], [sample[1] for sample in samples]
    return {"wall_min": min(walls) * 1000, "wall_median": median_ms(walls), "cpu_median": median_ms(cpus)}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace, plan: Plan) -> None:
        self.args = args
        self.plan = plan
        self.venv = Path(args.ansible_venv)
        self.python = str(self.venv / "bin" / "python")
        self.collections = Path(args.collections_path)
        self.work = Path(args.work_dir)
        self.emulator = Emulator(Path(args.emulator_state))
        self.run_id = datetime.datetime.now().strftime("%H%M%S")
        self.series: t.Dict[str, Series] = {}
        self.rows: t.List[Row] = []
        self.sections: t.List[str] = []
        self.profile: t.Dict[str, t.Any] = {}
        self.failures: t.List[str] = []
        self.timings: t.Dict[str, float] = {}
        self._caches = 0
        budget = min(args.quiet_gate_budget, 60.0) if plan.quick else args.quiet_gate_budget
        self.gate = {"enabled": not args.no_quiet_gate, "budget": budget, "waited": 0.0, "runs": 0, "busy_runs": 0, "step_budget": 0.0, "step_waited": 0.0}
        self.vars_file = self.work / "emulator-vars.json"
        info = self.emulator.info
        variables = {f"cloudpartner_bench_{name}": info[name] for name in ("api_url", "authority_host", "tenant_id", "client_id", "client_secret", "ca_path")}
        variables["cloudpartner_bench_publisher_id"] = info["publisher_id"]
        descriptor = os.open(self.vars_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the client secret
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(variables, handle)
        self.env = {name: value for name, value in os.environ.items() if not name.startswith(FOREIGN_ENV_PREFIXES)}
        self.env.update(
            ANSIBLE_COLLECTIONS_PATH=str(self.collections),
            ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="false",
            ANSIBLE_LOCAL_TEMP=str(self.work / "ansible-local"),
            ANSIBLE_REMOTE_TMP=str(self.work / "ansible-remote"),
            ANSIBLE_HOME=str(self.work / "ansible-home"),
            ANSIBLE_CALLBACK_PLUGINS=str(BENCH_DIR / "callback_plugins"),
            ANSIBLE_CALLBACKS_ENABLED="bench_module_runs",
        )
        self._runs_file = self.work / "actions.json"

    # ---- plumbing

    def fresh_cache(self) -> str:
        """A token-cache home that does not exist yet (CLOUDPARTNER_TOKEN_CACHE_DIR): the module creates it
        and keeps its file in ``<home>/azure_marketplace.cloudpartner/tokens.json`` (directories mode 0700)."""
        self._caches += 1
        return str(self.work / "token-caches" / str(self._caches))

    def offer_name(self, *parts: t.Any) -> str:
        return "-".join(["b" + self.run_id, *(str(part) for part in parts)])

    def get_series(self, key: str, label: str, planned: int) -> Series:
        if key not in self.series:
            self.series[key] = Series(key, label, planned)
        return self.series[key]

    def playbook(
        self,
        name: str,
        extra: t.Optional[dict] = None,
        cache: t.Optional[str] = None,
        env: t.Optional[dict] = None,
        timeout: float = 900,
    ) -> Run:
        command = [
            str(self.venv / "bin" / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={self.python}",
            "-e",
            f"@{self.vars_file}",
        ]
        if extra:
            command += ["-e", json.dumps(extra)]
        command.append(str(PLAYBOOKS / name))
        environment = dict(self.env)
        if cache:
            environment["CLOUDPARTNER_TOKEN_CACHE_DIR"] = cache
        environment.update(env or {})
        environment["CLOUDPARTNER_BENCH_RUNS_FILE"] = str(self._runs_file)
        self.wait_for_quiet()
        self._runs_file.unlink(missing_ok=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        try:
            completed = subprocess.run(
                command, cwd=self.work, env=environment, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise BenchmarkError(f"{name} did not finish within {timeout:.0f} s") from error
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        output = completed.stdout + completed.stderr
        if completed.returncode != 0:
            tail = "\n".join(output.splitlines()[-25:])
            raise BenchmarkError(f"{name} exited {completed.returncode} after {wall:.2f} s:\n{tail}")
        try:
            actions = json.loads(self._runs_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            actions = {}
        return Run(wall, cpu, output, actions)

    def wait_for_quiet(self) -> None:
        """Other jobs on this small machine (test suites, other benchmarks) distort wall times by up to a factor 2.

        Before each playbook run, wait (at most GATE_MAX_WAIT_PER_RUN seconds, and --quiet-gate-budget seconds in
        all) until other processes use less than BUSY_THRESHOLD of the CPUs; count the runs that started busy anyway.
        """
        gate = self.gate
        if not gate["enabled"]:
            return
        gate["runs"] += 1
        start = time.monotonic()
        busy = cpu_busy(GATE_SAMPLE_SECONDS)
        while busy is not None and busy > BUSY_THRESHOLD:
            waited = time.monotonic() - start
            if waited >= GATE_MAX_WAIT_PER_RUN or gate["step_waited"] + waited >= gate["step_budget"]:
                gate["busy_runs"] += 1
                break
            time.sleep(1.0)
            busy = cpu_busy(GATE_SAMPLE_SECONDS)
        gate["waited"] += time.monotonic() - start
        gate["step_waited"] += time.monotonic() - start

    def expect_status(self, offers: t.Iterable[str], wanted: t.Collection[str], posts: t.Optional[int] = 1) -> None:
        """The play must really have done the job: a fast wrong run would make a fine-looking number."""
        for offer in offers:
            state = self.emulator.offer(offer)
            if state["status"] not in wanted or (posts is not None and state["cancel_posts"] != posts):
                raise BenchmarkError(f"offer {offer}: status {state['status']}, {state['cancel_posts']} cancel POSTs; expected {sorted(wanted)}, {posts}")

    def record(self, series: Series, run: Run, detail: str = "") -> None:
        series.add(run)
        log(f"  {series.label}: {run.wall:.2f} s (cpu {run.cpu:.2f} s){' ' + detail if detail else ''}")

    def attempt(self, label: str, action: t.Callable[[], None], gate_share: float = 0.0) -> None:
        """Run one measurement; a failure is reported (and fails the run) but the others still run.

        ``gate_share`` is the part of the quiet gate's budget this measurement may wait, so that a busy spell at the
        start does not use it all up.
        """
        log(f"== {label}")
        self.gate.update(step_budget=self.gate["budget"] * gate_share, step_waited=0.0)
        start = time.perf_counter()
        try:
            action()
        except (BenchmarkError, OSError, subprocess.SubprocessError, ValueError, KeyError) as error:
            log(f"FAILED: {label}: {error}")
            self.failures.append(f"{label}: {str(error).splitlines()[0]}")
        self.timings[label] = time.perf_counter() - start
        log(f"== {label}: {self.timings[label]:.0f} s")

    # ---- measurements

    def warm_up(self) -> None:
        """First runs compile .pyc files and fill OS caches; they are not measured."""
        offer = self.offer_name("warmup")
        self.emulator.put_offer(offer, {"state": "idle"})
        self.playbook("ping.yml")
        self.playbook("cancel.yml", {"cloudpartner_bench_offer": offer}, cache=self.fresh_cache())

    def measure_wait(self) -> None:
        """1: one cancel answered 202 that takes T seconds, waited for by the module and by uri tasks."""
        plan, duration = self.plan, self.plan.t_wait
        ping = self.get_series("m1-ping", "1c: ping playbook (baseline)", plan.reps)
        module = self.get_series("m1-module", f"1a: module, 202 + wait (T={duration} s, wait_sleep 1)", plan.reps)
        uri = self.get_series("m1-uri", f"1b: ansible.builtin.uri tasks, until loop (T={duration} s, delay 1)", plan.reps)

        def run_module(rep: int) -> None:
            offer = self.offer_name("m1-module", rep)
            self.emulator.put_offer(offer, {"cancel": {"status": 202, "duration": duration}})
            extra = {"cloudpartner_bench_offer": offer, "cloudpartner_bench_wait": True, "cloudpartner_bench_wait_sleep": 1}
            run = self.playbook("cancel.yml", extra, cache=self.fresh_cache())
            self.expect_status([offer], {"canceled"})
            self.record(module, run)

        def run_uri(rep: int) -> None:
            offer = self.offer_name("m1-uri", rep)
            self.emulator.put_offer(offer, {"cancel": {"status": 202, "duration": duration}})
            run = self.playbook("cancel_uri.yml", {"cloudpartner_bench_offer": offer, "cloudpartner_bench_poll_retries": 2 * duration + 10})
            self.expect_status([offer], {"canceled"})
            self.record(uri, run)

        def run_ping(rep: int) -> None:
            self.record(ping, self.playbook("ping.yml"))

        self.interleave([run_ping, run_module, run_uri], plan.reps)
        excess_module = module.median - ping.median - duration
        excess_uri = uri.median - ping.median - duration
        limit = 0.5 * excess_uri
        self.rows += [
            Row(ping, "baseline of 1a/1b"),
            Row(module, f"excess {excess_module:.2f} s", f"excess <= 0.5 x excess(uri) = {limit:.2f} s", excess_module <= limit),
            Row(uri, f"excess {excess_uri:.2f} s"),
        ]
        self.profile["m1"] = {"excess_module": excess_module, "excess_uri": excess_uri, "ratio": excess_module / excess_uri if excess_uri else None}

    def measure_overhead(self) -> None:
        """2: one cancel answered 200 against one ping, warm and cold token cache."""
        reps = self.plan.overhead_reps
        ping = self.get_series("m2-ping", "2: ping playbook (baseline)", reps)
        warm = self.get_series("m2-warm", "2: cancel answered 200, warm token cache", reps)
        cold = self.get_series("m2-cold", "2: cancel answered 200, cold token cache", reps)
        if reps != self.plan.reps:
            for series in (ping, warm, cold):
                series.note = "2 x --reps: the target is a 150 ms difference"
        warm_cache = self.fresh_cache()
        # Prime the warm cache the way a play does: its first task requests the token.
        primer = self.offer_name("m2-primer")
        self.emulator.put_offer(primer, {"state": "idle"})
        self.playbook("cancel.yml", {"cloudpartner_bench_offer": primer}, cache=warm_cache)

        def run_cancel(series: Series, rep: int, cache: str) -> None:
            offer = self.offer_name(series.key, rep)
            self.emulator.put_offer(offer, {"cancel": {"status": 200}})
            before = self.emulator.token_requests()
            run = self.playbook("cancel.yml", {"cloudpartner_bench_offer": offer}, cache=cache)
            requested = self.emulator.token_requests() - before
            self.expect_status([offer], {"canceled"})
            series.counts.append(requested)
            self.record(series, run, f"({requested} token requests)")

        self.interleave(
            [
                lambda rep: self.record(ping, self.playbook("ping.yml")),
                lambda rep: run_cancel(warm, rep, warm_cache),
                lambda rep: run_cancel(cold, rep, self.fresh_cache()),
            ],
            reps,
        )
        warm_diff = (warm.median - ping.median) * 1000
        cold_diff = (cold.median - ping.median) * 1000
        # Differences within one repetition (run next to each other) suffer less from the machine's slow spells.
        warm_paired = statistics.median(b - a for a, b in zip(ping.walls, warm.walls)) * 1000
        cold_paired = statistics.median(b - a for a, b in zip(ping.walls, cold.walls)) * 1000
        warm_min = (min(warm.walls) - min(ping.walls)) * 1000
        cold_min = (min(cold.walls) - min(ping.walls)) * 1000
        cpu_diff = (warm.cpu_median - ping.cpu_median) * 1000
        cold_cpu_diff = (cold.cpu_median - ping.cpu_median) * 1000
        self.rows += [
            Row(ping, "baseline of 2"),
            Row(
                warm,
                f"{warm_diff:+.0f} ms vs ping (paired {warm_paired:+.0f}, fastest {warm_min:+.0f}, CPU {cpu_diff:+.0f} ms); "
                f"token requests {counts(warm.counts)}",
                "<= +150 ms vs ping",
                warm_diff <= 150,
            ),
            Row(
                cold,
                f"{cold_diff:+.0f} ms vs ping (paired {cold_paired:+.0f}, fastest {cold_min:+.0f}, CPU {cold_cpu_diff:+.0f} ms); "
                f"token requests {counts(cold.counts)}",
                "(reported, no target)",
            ),
        ]
        self.profile["m2"] = {
            "warm_diff_ms": warm_diff,
            "warm_paired_ms": warm_paired,
            "warm_min_ms": warm_min,
            "cold_min_ms": cold_min,
            "warm_cpu_diff_ms": cpu_diff,
            "cold_diff_ms": cold_diff,
            "cold_paired_ms": cold_paired,
            "cold_cpu_diff_ms": cold_cpu_diff,
        }

    def measure_tokens(self) -> None:
        """4: token requests of a play of several cancels, token cache on and off."""
        plan, size = self.plan, self.plan.token_play_size
        cached = self.get_series("m4-cache", f"4: play of {size} cancels, token_cache: true", plan.token_reps)
        uncached = self.get_series("m4-nocache", f"4: play of {size} cancels, token_cache: false", plan.token_reps)

        def run_play(series: Series, rep: int, token_cache: bool) -> None:
            offers = [self.offer_name(series.key, rep, index) for index in range(size)]
            for index, offer in enumerate(offers):
                # Half of them have nothing running, half are cancelled at once (200).
                self.emulator.put_offer(offer, {"state": "idle"} if index % 2 == 0 else {"cancel": {"status": 200}})
            before = self.emulator.token_requests()
            extra = {"cloudpartner_bench_offers": offers, "cloudpartner_bench_token_cache": token_cache}
            run = self.playbook("cancel_many.yml", extra, cache=self.fresh_cache())
            requested = self.emulator.token_requests() - before
            self.expect_status(offers[0::2], {"completed"}, posts=0)
            self.expect_status(offers[1::2], {"canceled"})
            series.counts.append(requested)
            self.record(series, run, f"({requested} token requests)")

        self.interleave([lambda rep: run_play(cached, rep, True), lambda rep: run_play(uncached, rep, False)], plan.token_reps)
        cached_count = statistics.median(cached.counts)
        uncached_count = statistics.median(uncached.counts)
        self.rows += [
            Row(cached, f"token requests {counts(cached.counts)}", "1 token request per play", max(cached.counts) == 1),
            Row(
                uncached,
                f"token requests {counts(uncached.counts)}",
                f"{size} expected (one per task: the cache is what saves them)",
                min(uncached.counts) == size,
            ),
        ]
        self.profile["m4"] = {"cached": cached_count, "uncached": uncached_count}

    def measure_many(self) -> None:
        """3: N offers whose cancels take T seconds: the role against a naive loop with wait."""
        plan, duration = self.plan, self.plan.t_role
        role_ready = (self.collections / ROLE_TASKS).is_file()
        target_count = 10 if 10 in plan.offer_counts else max(plan.offer_counts)

        def run_many(series: Series, rep: int, playbook: str, size: int, extra: t.Optional[dict] = None) -> None:
            offers = [self.offer_name(series.key, rep, index) for index in range(size)]
            for offer in offers:
                self.emulator.put_offer(offer, {"cancel": {"status": 202, "duration": duration}})
            variables = dict(extra or {}, cloudpartner_bench_offers=offers)
            run = self.playbook(playbook, variables, cache=self.fresh_cache(), timeout=120 + size * (duration + 15))
            self.expect_status(offers, {"canceled"})
            series.module_runs.append(run.module_runs)
            self.record(series, run, f"({series.module_runs[-1]} module runs)")

        # Same poll interval as the naive loop (wait_sleep: 1); the role's own default is measured at N=target below.
        fast_polls = {"operation_cancel_wait_sleep": 1}
        for count in plan.offer_counts:
            role = self.get_series(f"m3-role-{count}", f"3: role, N={count} (T={duration} s, operation_cancel_wait_sleep 1)", plan.role_reps(count))
            naive = self.get_series(f"m3-naive-{count}", f"3: naive loop with wait, N={count} (T={duration} s, wait_sleep 1)", plan.naive_reps(count))
            for series, planned in ((role, plan.role_reps(count)), (naive, plan.naive_reps(count))):
                if planned < plan.reps:
                    series.note = f"reps reduced to {planned} to keep the run short"
            if not role_ready:
                role.skipped = "roles/operation_cancel is not in the built collection"
            for rep in range(plan.reps):
                steps: t.List[t.Callable[[], None]] = []
                if role_ready and rep < plan.role_reps(count):
                    steps.append(lambda rep=rep, count=count, series=role: run_many(series, rep, "role.yml", count, fast_polls))
                if rep < plan.naive_reps(count):
                    steps.append(lambda rep=rep, count=count, series=naive: run_many(series, rep, "naive_loop.yml", count))
                shift = rep % len(steps) if steps else 0
                for step in steps[shift:] + steps[:shift]:
                    step()
        default_role = self.get_series(
            f"m3-role-default-{target_count}",
            f"3: role at its defaults, N={target_count} (T={duration} s, operation_cancel_wait_sleep 10)",
            plan.default_role_reps,
        )
        if plan.default_role_reps < plan.reps:
            default_role.note = f"reps reduced to {plan.default_role_reps} to keep the run short"
        if role_ready:
            for rep in range(plan.default_role_reps):
                run_many(default_role, rep, "role.yml", target_count)
        else:
            default_role.skipped = "roles/operation_cancel is not in the built collection"

        for count in plan.offer_counts:
            role, naive = self.series[f"m3-role-{count}"], self.series[f"m3-naive-{count}"]
            target = f"role/naive <= 0.3 at N={target_count}" if count == target_count else ""
            if role.walls and naive.walls:
                ratio = role.median / naive.median
                self.rows.append(Row(role, f"role/naive {ratio:.2f}; {runs_per_offer(role, count)}", target, ratio <= 0.3 if target else None))
            else:
                self.rows.append(Row(role, "", target, False if target else None))
            self.rows.append(Row(naive, f"{naive.median / count:.2f} s per offer; {runs_per_offer(naive, count)}" if naive.walls else ""))
        naive_target = self.series[f"m3-naive-{target_count}"]
        if default_role.walls and naive_target.walls:
            ratio = default_role.median / naive_target.median
            derived = f"role/naive {ratio:.2f}; {runs_per_offer(default_role, target_count)}"
            self.rows.append(Row(default_role, derived, "(reported: what users get by default)"))
        else:
            self.rows.append(Row(default_role))

    def interleave(self, steps: t.Sequence[t.Callable[[int], None]], reps: int) -> None:
        """Rotate the order every repetition, so that a slow spell of the machine hits every scenario alike."""
        for rep in range(reps):
            shift = rep % len(steps)
            for step in list(steps[shift:]) + list(steps[:shift]):
                step(rep)

    # ---- where the time goes (measurement 2's cancel, taken apart)

    def timed(self, command: t.List[str], env: t.Dict[str, str]) -> t.Tuple[float, float, subprocess.CompletedProcess]:
        """Wall and CPU seconds (user + sys of the child) of one process."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=self.work)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if completed.returncode != 0 or '"failed": true' in completed.stdout:
            raise BenchmarkError(f"{' '.join(command[-2:])} failed: {completed.stdout[-500:]} {completed.stderr[-500:]}")
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), completed

    def measure_profile(self) -> None:
        """Measurement 2's cancel taken apart. Process-level numbers are summarised by the fastest run (the least
        disturbed by other work on the machine) and the median CPU time, which load hardly changes."""
        reps = self.plan.profile_reps
        result: t.Dict[str, t.Any] = {"reps": reps}

        # a) Fresh interpreters importing what the module imports (from site-packages, bytecode cached).
        env = dict(self.env, PYTHONPATH=str(self.collections))
        statements = {
            "python -c pass": "pass",
            "import ansible.module_utils.basic": "import ansible.module_utils.basic",
            "import requests": "import requests",
            "import msal": "import msal",
            "import ansible.modules.ping": "import ansible.modules.ping",
            "import ansible.module_utils.basic, requests": "import ansible.module_utils.basic, requests",
            "import ansible.module_utils.basic, http.client, ssl": "import ansible.module_utils.basic, http.client, ssl",
            "import cloudpartner_operation_cancel (module + module_utils)": f"import {CANCEL_MODULE}",
        }
        imports = {}
        for label, statement in statements.items():
            samples = [self.timed([self.python, "-c", statement], env) for _attempt in range(reps)]
            imports[label] = summary(samples)
            log(f"  {label}: {imports[label]['wall_min']:.0f} ms (CPU {imports[label]['cpu_median']:.0f} ms)")
        result["imports"] = imports

        # b) The module processes themselves: keep the AnsiballZ wrappers of one ping and one cancel run and
        #    run them directly (no ansible-playbook), warm and cold token cache.
        kept = self.work / "ansiballz"
        shutil.rmtree(kept, ignore_errors=True)
        keep_env = {"ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_REMOTE_TMP": str(kept)}
        warm_cache = self.fresh_cache()
        offer = self.offer_name("profile")
        self.emulator.put_offer(offer, {"cancel": {"status": 200}})
        self.playbook("ping.yml", env=keep_env)
        self.playbook("cancel.yml", {"cloudpartner_bench_offer": offer}, cache=warm_cache, env=keep_env)
        wrappers = {path.name: path for path in kept.rglob("AnsiballZ_*.py")}
        ping_wrapper, cancel_wrapper = wrappers["AnsiballZ_ping.py"], wrappers["AnsiballZ_cloudpartner_operation_cancel.py"]
        result["ansiballz_kb"] = {"ping": ping_wrapper.stat().st_size / 1024, "cancel": cancel_wrapper.stat().st_size / 1024}
        cases = {"ping": (ping_wrapper, None), "cancel, warm cache": (cancel_wrapper, warm_cache), "cancel, cold cache": (cancel_wrapper, "")}

        def run_case(
            label: str, options: t.Sequence[str] = (), debug: t.Optional[str] = None
        ) -> t.Tuple[float, float, subprocess.CompletedProcess, t.List[dict]]:
            wrapper, cache = cases[label]
            run_env = dict(self.env)
            if cache is not None:
                # "" asks for a cold cache: a new cache home every run.
                run_env["CLOUDPARTNER_TOKEN_CACHE_DIR"] = cache or self.fresh_cache()
                self.emulator.put_offer(offer, {"cancel": {"status": 200}})
            seq = self.emulator.last_seq()
            wall, cpu, completed = self.timed([self.python, *options, str(wrapper), *([debug] if debug else [])], run_env)
            return wall, cpu, completed, self.emulator.requests_since(seq)

        direct: t.Dict[str, t.Any] = {}
        for label in cases:
            samples, spans = [], []
            for _attempt in range(reps):
                wall, cpu, completed, requests = run_case(label)
                samples.append((wall, cpu, completed))
                times = [entry["time"] for entry in requests]
                spans.append(max(times) - min(times) if times else 0.0)
                direct.setdefault("requests", {})[label] = len(requests)
            direct[label] = dict(summary(samples), http_span_ms=median_ms(spans))
            log(f"  direct module run, {label}: {direct[label]['wall_min']:.0f} ms (CPU {direct[label]['cpu_median']:.0f} ms)")
        result["direct"] = direct

        # c) -X importtime of the real module runs: which imports they pay for (per-package medians).
        importtimes: t.Dict[str, t.Dict[str, float]] = {}
        for label in cases:
            samples_it = [import_breakdown(run_case(label, ("-X", "importtime"))[2].stderr) for _attempt in range(reps)]
            importtimes[label] = {key: statistics.median(sample[key] for sample in samples_it) for key in samples_it[0]}
        result["importtime_ms"] = importtimes

        # d) AnsiballZ imports ansible.module_utils and the collection's module_utils from a zip, where Python
        #    cannot cache bytecode: every run compiles them. The wrappers' debug mode runs the same code from an
        #    exploded directory, where .pyc files are written once (first run, not counted) and reused.
        exploded: t.Dict[str, t.Dict[str, float]] = {}
        for label in ("ping", "cancel, warm cache"):
            self.timed([self.python, str(cases[label][0]), "explode"], self.env)
            samples = [run_case(label, debug="execute")[:3] for _attempt in range(reps + 1)][1:]
            exploded[label] = summary(samples)
            log(f"  exploded module run (bytecode cached), {label}: {exploded[label]['wall_min']:.0f} ms (CPU {exploded[label]['cpu_median']:.0f} ms)")
        result["exploded"] = exploded

        # e) TLS handshakes and requests to the emulator, in one process with requests already imported.
        probe = self.timed([self.python, "-c", TLS_PROBE, self.emulator.info["control_url"] + "/health", self.emulator.info["ca_path"], "20"], self.env)[2]
        result["tls_ms"] = json.loads(probe.stdout)

        # f) The controller builds the AnsiballZ payload of every module run (a fresh ansible-playbook process has no
        #    cache of it): module_utils discovery, then the zip. One module per fresh process, as in measurement 2.
        builds: t.Dict[str, t.Any] = {}
        for label, name in (("ping", "ansible.builtin.ping"), ("cancel", "azure_marketplace.cloudpartner.cloudpartner_operation_cancel")):
            try:
                samples_build = []
                for attempt in range(reps):
                    build_env = dict(self.env, ANSIBLE_LOCAL_TEMP=str(self.work / f"build-{label}-{attempt}"))
                    samples_build.append(json.loads(self.timed([self.python, "-c", BUILD_PROBE, str(self.collections), name], build_env)[2].stdout))
            except (BenchmarkError, ValueError) as error:
                builds[label] = {"error": str(error).splitlines()[0][:200]}
                continue
            builds[label] = {
                "wall_min": min(sample["build_ms"] for sample in samples_build),
                "cpu_median": statistics.median(sample["cpu_ms"] for sample in samples_build),
                "kb": samples_build[0]["kb"],
            }
            log(f"  AnsiballZ build on the controller, {label}: {builds[label]['wall_min']:.0f} ms (CPU {builds[label]['cpu_median']:.0f} ms)")
        result["ansiballz_build"] = builds

        # g) The controller: ansible-playbook with one controller-only task (debug), against ping.
        playbook_reps = min(reps, 3)
        debug = self.get_series("profile-debug", "profile: debug playbook (no module process)", playbook_reps)
        ping = self.get_series("profile-ping", "profile: ping playbook", playbook_reps)
        self.interleave(
            [lambda rep: self.record(debug, self.playbook("debug.yml")), lambda rep: self.record(ping, self.playbook("ping.yml"))], playbook_reps
        )
        result["playbooks"] = {
            name: {"wall_min": min(item.walls) * 1000, "wall_median": item.median * 1000, "cpu_median": item.cpu_median * 1000}
            for name, item in (("debug", debug), ("ping", ping))
        }
        self.profile["where"] = result

    # ---- reporting

    def machine(self) -> t.Dict[str, str]:
        versions = subprocess.run(
            [self.python, "-c", VERSIONS],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        model = ""
        try:
            model = next(
                (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines() if line.startswith("model name")), ""
            )
        except OSError:
            pass
        try:
            import matplotlib  # pylint: disable=import-outside-toplevel

            matplotlib_version = matplotlib.__version__
        except ImportError:
            matplotlib_version = "not installed"
        return {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": str(os.cpu_count()),
            "cpu": model or platform.processor() or "unknown",
            "os": platform.platform(),
            "python (modules and ansible-playbook)": versions[0],
            "ansible-core": versions[1],
            "requests / msal": f"{versions[2]} / {versions[3]}",
            "matplotlib (plot)": matplotlib_version,
            "collection": git_describe(),
        }


def runs_per_offer(series: Series, count: int) -> str:
    if not series.module_runs:
        return ""
    runs = statistics.median(series.module_runs)
    return f"{runs:g} module runs ({runs / count:.1f} per offer)"


def cpu_busy(seconds: float) -> t.Optional[float]:
    """Share of all CPUs busy during ``seconds`` (from /proc/stat), or None where that cannot be read."""

    def sample() -> t.Tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total_before, idle_before = sample()
        time.sleep(seconds)
        total_after, idle_after = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total_after - total_before
    return 1.0 - (idle_after - idle_before) / total if total > 0 else None


def counts(values: t.Sequence[int]) -> str:
    return ", ".join(str(value) for value in values) if values else "-"


def git_describe() -> str:
    root = BENCH_DIR.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def import_breakdown(stderr: str) -> t.Dict[str, float]:
    """Cumulative milliseconds of the interesting packages in ``python -X importtime`` output.

    A package counts where it is first imported (nested or not); ``total`` adds up the top-level imports.
    """
    wanted = {
        "ansible.module_utils.basic": "ansible.module_utils.basic",
        "requests": "requests",
        "urllib3": "urllib3 (inside requests)",
        "msal": "msal",
    }
    found: t.Dict[str, float] = {}
    total = 0.0
    collection = 0.0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        try:
            _self, cumulative, name_part = line[len("import time:"):].split("|", 2)
            microseconds = float(cumulative)
        except ValueError:
            continue
        name = name_part.strip()
        depth = (len(name_part) - len(name_part.lstrip(" ")) - 1) // 2
        if depth == 0:
            total += microseconds
            if name.startswith("ansible_collections."):
                collection += microseconds
        if name in wanted and wanted[name] not in found:
            found[wanted[name]] = microseconds
    result = {label: found.get(label, 0.0) / 1000.0 for label in wanted.values()}
    result["collection module_utils (incl. requests)"] = collection / 1000.0
    result["all imports"] = total / 1000.0
    return result


VERSIONS = "import sys, ansible, requests, msal; print(sys.version.split()[0], ansible.__version__, requests.__version__, msal.__version__)"

# Run by the ansible venv's python: how long the controller takes to build one module's AnsiballZ payload
# (ansible.executor.module_common.modify_module, an internal API of ansible-core 2.19).
BUILD_PROBE = r"""
import json, sys, time
from ansible import constants as C
from ansible.executor.module_common import modify_module
from ansible.plugins.loader import init_plugin_loader, module_loader
from ansible.template import Templar
init_plugin_loader([sys.argv[1]])
# As in a play, where the ansible.builtin routing (a big YAML file) is loaded long before a module is built.
module_loader.find_plugin_with_context("ansible.builtin.ping")
context = module_loader.find_plugin_with_context(sys.argv[2])
start, cpu = time.perf_counter(), time.process_time()
built = modify_module(module_name=sys.argv[2], module_path=context.plugin_resolved_path, module_args={}, templar=Templar(loader=None),
                      task_vars={"ansible_python_interpreter": sys.executable}, module_compression=C.DEFAULT_MODULE_COMPRESSION, environment={})
print(json.dumps({"build_ms": (time.perf_counter() - start) * 1000, "cpu_ms": (time.process_time() - cpu) * 1000, "kb": len(built.b_module_data) / 1024}))
"""

# Run by the ansible venv's python: TLS handshake and request costs against the emulator's api listener.
TLS_PROBE = r"""
import json, socket, ssl, statistics, sys, time, urllib.parse
import requests
url, ca, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
parts = urllib.parse.urlsplit(url)
context = ssl.create_default_context(cafile=ca)
def median_ms(values):
    return round(statistics.median(values) * 1000, 2)
connect, handshake = [], []
for _ in range(count):
    start = time.perf_counter()
    with socket.create_connection((parts.hostname, parts.port)) as raw:
        middle = time.perf_counter()
        with context.wrap_socket(raw, server_hostname=parts.hostname):
            handshake.append(time.perf_counter() - middle)
    connect.append(middle - start)
fresh = []
for _ in range(count):
    start = time.perf_counter()
    with requests.Session() as session:
        session.trust_env = False
        session.get(url, verify=ca, timeout=10).raise_for_status()
    fresh.append(time.perf_counter() - start)
reused = []
with requests.Session() as session:
    session.trust_env = False
    session.get(url, verify=ca, timeout=10).raise_for_status()
    for _ in range(count):
        start = time.perf_counter()
        session.get(url, verify=ca, timeout=10).raise_for_status()
        reused.append(time.perf_counter() - start)
print(json.dumps({"tcp connect": median_ms(connect), "TLS handshake": median_ms(handshake),
                  "GET, new session (connect + TLS + request)": median_ms(fresh), "GET, reused connection": median_ms(reused)}))
"""


def fmt(value: float) -> str:
    return f"{value:.2f}"


def write_markdown(bench: Bench, path: Path, machine: t.Dict[str, str], total: t.Optional[float]) -> None:
    plan = bench.plan
    lines = [
        "# Benchmark results: azure_marketplace.cloudpartner",
        "",
        f"Written by `benchmarks/run.sh{' --quick' if plan.quick else ''}` on {machine['date']}. "
        "Wall time of the whole `ansible-playbook` process in seconds; median, min and max over the repetitions. "
        "See `benchmarks/README.md` for what each scenario does.",
        "",
    ]
    if plan.quick:
        lines += ["**Quick smoke run** (1 repetition, short T and small N): the numbers are not meaningful.", ""]
    if bench.failures:
        lines += ["**Failures:**", ""] + [f"- {failure}" for failure in bench.failures] + [""]
    lines += [
        "| scenario | median s | min s | max s | reps | derived metric | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in bench.rows:
        series = row.series
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        if series.skipped:
            lines.append(f"| {series.label} | - | - | - | 0 | not run: {series.skipped} | {row.target} | {met} |")
            continue
        if not series.walls:
            lines.append(f"| {series.label} | - | - | - | 0 | failed, see above | {row.target} | {met} |")
            continue
        reps = str(len(series.walls)) + (f" ({series.note})" if series.note else "")
        lines.append(
            f"| {series.label} | {fmt(series.median)} | {fmt(min(series.walls))} | {fmt(max(series.walls))} | {reps} | {row.derived} | {row.target} | {met} |"
        )
    lines += [""]
    where = bench.profile.get("where")
    if where:
        lines += where_section(where, bench.profile.get("m2", {}))
    lines += ["## Machine", ""]
    lines += [f"- {name}: {value}" for name, value in machine.items()]
    load = bench.profile.get("load", {})
    if load:
        lines.append(f"- load average (1 min) at start / end: {load['start']:.2f} / {load['end']:.2f}")
    gate = bench.gate
    if gate["enabled"]:
        lines.append(
            f"- quiet gate (wait before a run while other processes use more than {BUSY_THRESHOLD:.0%} of the CPUs): waited {gate['waited']:.0f} s "
            f"in all; {gate['busy_runs']} of {gate['runs']} playbook runs started on a busy machine anyway"
        )
    else:
        lines.append("- quiet gate: off (--no-quiet-gate)")
    lines.append(f"- measurement times: {', '.join(f'{label} {seconds:.0f} s' for label, seconds in bench.timings.items())}")
    if total is not None:
        lines.append(f"- total run time of run.sh (setup included): {total:.0f} s")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def where_section(where: dict, m2: dict) -> t.List[str]:
    direct, exploded, importtime = where["direct"], where["exploded"], where["importtime_ms"]
    playbooks, imports = where["playbooks"], where["imports"]
    columns = ("ping", "cancel, warm cache", "cancel, cold cache")

    def pair(values: t.Optional[t.Mapping[str, float]]) -> str:
        return f"{values['wall_min']:.0f} / {values['cpu_median']:.0f}" if values else "-"

    def row(title: str, cells: t.Mapping[str, str]) -> str:
        return f"| {title} | " + " | ".join(cells.get(column, "-") for column in columns) + " |"

    def added(what: str) -> float:
        """Fastest wall ms of importing ``what`` after ansible.module_utils.basic, minus basic alone."""
        return imports[f"import ansible.module_utils.basic, {what}"]["wall_min"] - imports["import ansible.module_utils.basic"]["wall_min"]

    compile_cost = {
        column: f"{direct[column]['wall_min'] - exploded[column]['wall_min']:.0f} / {direct[column]['cpu_median'] - exploded[column]['cpu_median']:.0f}"
        for column in exploded
    }
    lines = [
        "## Where the time goes (measurement 2's cancel, taken apart)",
        "",
        f"Process-level numbers: fastest of {where['reps']} runs (the least disturbed by other work on the machine) / median CPU time "
        "(user + sys), in ms. The module processes are run directly from the AnsiballZ wrappers a play used "
        "(`ANSIBLE_KEEP_REMOTE_FILES=1`, then `python AnsiballZ_*.py`), without ansible-playbook.",
        "",
        "| module process | " + " | ".join(columns) + " |",
        "|---|---|---|---|",
        row("whole module process, as in a play (wall / CPU)", {column: pair(direct[column]) for column in columns}),
        row("same code exploded to disk, bytecode cached (`AnsiballZ_*.py execute`)", {column: pair(exploded.get(column)) for column in columns}),
        row("= compiling module_utils from the AnsiballZ zip, every run", compile_cost),
    ]
    for key in importtime["cancel, warm cache"]:
        lines.append(row(f"`-X importtime` (median ms): {key}", {column: f"{importtime[column][key]:.0f}" for column in columns}))
    lines += [
        row("HTTP requests the emulator logged", {column: str(direct.get("requests", {}).get(column, 0)) for column in columns}),
        row("HTTP span, first to last request (ms)", {column: f"{direct[column]['http_span_ms']:.0f}" for column in columns if column != "ping"}),
        "",
        "`-X importtime` inflates what it measures and counts a package where it is first imported (urllib3 inside requests, "
        "requests inside the collection's module_utils); read those rows as proportions.",
        "",
        "Fresh `python -c '<statement>'` processes from site-packages (bytecode cached), fastest / CPU ms: "
        + ", ".join(f"`{label}` {pair(value)}" for label, value in imports.items())
        + ".",
        "",
        f"So requests adds {added('requests'):.0f} ms to a process that already imports ansible.module_utils.basic (as every module does); "
        f"the standard library's http.client and ssl add {added('http.client, ssl'):.0f} ms.",
        "",
        "Network on loopback (one process, requests already imported), median ms: "
        + ", ".join(f"{name} {value:.1f}" for name, value in where["tls_ms"].items())
        + ".",
        "",
        f"Whole playbooks (fastest / CPU ms): one debug task, no module process {pair(playbooks['debug'])}; one ping {pair(playbooks['ping'])}. "
        f"So one module run costs the controller about {playbooks['ping']['wall_min'] - playbooks['debug']['wall_min'] - direct['ping']['wall_min']:.0f} ms "
        f"wall / {playbooks['ping']['cpu_median'] - playbooks['debug']['cpu_median'] - direct['ping']['cpu_median']:.0f} ms CPU beyond the module process "
        "(worker fork, temp dir and /bin/sh calls, AnsiballZ build and transfer, result handling). "
        f"AnsiballZ wrapper size: ping {where['ansiballz_kb']['ping']:.0f} KiB, cancel {where['ansiballz_kb']['cancel']:.0f} KiB.",
        "",
        "Building the AnsiballZ payload on the controller (`module_common.modify_module`, fresh process, one module; fastest / CPU ms): "
        + ", ".join(
            f"{label} {pair(value)}" if "wall_min" in value else f"{label} not measured ({value.get('error', '')})"
            for label, value in where.get("ansiballz_build", {}).items()
        )
        + ".",
        "",
    ]
    if m2:
        wall_diff = direct["cancel, warm cache"]["wall_min"] - direct["ping"]["wall_min"]
        cpu_diff = direct["cancel, warm cache"]["cpu_median"] - direct["ping"]["cpu_median"]
        lines += [
            f"Measurement 2 (whole playbooks): warm cancel - ping = {m2['warm_diff_ms']:+.0f} ms median, {m2['warm_min_ms']:+.0f} ms fastest-to-fastest, "
            f"{m2['warm_cpu_diff_ms']:+.0f} ms CPU. The module processes alone differ by {wall_diff:+.0f} ms wall / {cpu_diff:+.0f} ms CPU.",
            "",
        ]
    return lines


def _measured(series: t.Dict[str, Series], key: str) -> t.Optional[Series]:
    item = series.get(key)
    return item if item is not None and item.walls else None


def _spread(items: t.Sequence[Series]) -> t.List[t.List[float]]:
    """Error bars from the median down to the min and up to the max."""
    return [[item.median - min(item.walls) for item in items], [max(item.walls) - item.median for item in items]]


def plot(bench: Bench, path: Path) -> None:
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    series = bench.series
    figure, axes = plt.subplots(2, 2, figsize=(13, 9))
    title = "azure_marketplace.cloudpartner benchmarks" + (" (quick smoke run)" if bench.plan.quick else "")
    figure.suptitle(f"{title}: wall time of ansible-playbook, median with min-max bars", fontsize=13)

    # 3: role vs naive loop, wall time against N.
    ax = axes[0][0]
    for prefix, label, style in (("m3-role", "role, wait_sleep 1", "o-"), ("m3-naive", "naive loop, wait_sleep 1", "s--")):
        xs = [count for count in bench.plan.offer_counts if _measured(series, f"{prefix}-{count}")]
        items = [series[f"{prefix}-{count}"] for count in xs]
        if not items:
            continue
        medians = [item.median for item in items]
        ax.errorbar(xs, medians, yerr=_spread(items), fmt=style, capsize=4, label=label)
        for x, y in zip(xs, medians):
            below = prefix == "m3-role"
            ax.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=(0, -15 if below else 8), ha="center", fontsize=8)
        if prefix == "m3-naive":
            ax.plot(xs, [0.3 * y for y in medians], ":", color="#555555", label="target: 0.3 x naive (at N=10)")
    for key, item in series.items():
        if key.startswith("m3-role-default-") and item.walls:
            count = int(key.rsplit("-", 1)[1])
            ax.errorbar([count], [item.median], yerr=_spread([item]), fmt="D", color="#c44e52", capsize=4, label="role at its defaults (wait_sleep 10)")
            ax.annotate(f"{item.median:.1f}", (count, item.median), textcoords="offset points", xytext=(8, 0), fontsize=8, color="#c44e52")
    ax.set_title(f"3: N offers whose cancels take T={bench.plan.t_role} s")
    ax.set_ylim(bottom=0)
    ax.set_xlim(0, max(bench.plan.offer_counts) + 1)
    ax.set_xlabel("offers (N)")
    ax.set_ylabel("seconds")
    ax.set_xticks(bench.plan.offer_counts)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()

    def bars(ax: t.Any, keys: t.Sequence[t.Tuple[str, str]], title: str, annotate: t.Callable[[Series], str]) -> None:
        labels = [label for key, label in keys if _measured(series, key)]
        items = [series[key] for key, label in keys if _measured(series, key)]
        if not items:
            ax.set_title(title + " (not run)")
            return
        positions = list(range(len(items)))
        ax.bar(positions, [item.median for item in items], yerr=_spread(items), capsize=4, color=["#999999", "#4c72b0", "#dd8452"][: len(items)])
        ax.set_xticks(positions)
        ax.set_xticklabels(labels, fontsize=9)
        for position, item in zip(positions, items):
            # Inside the bar: above it the min-max bar would run through the text.
            ax.text(position, item.median / 2, annotate(item), ha="center", va="center", fontsize=9, color="white", fontweight="bold")
        ax.set_title(title)
        ax.set_ylabel("seconds")
        ax.set_ylim(0, max(max(item.walls) for item in items) * 1.2)
        ax.grid(True, axis="y", alpha=0.3)

    duration = bench.plan.t_wait
    ping1 = _measured(series, "m1-ping")
    bars(
        axes[0][1],
        [("m1-ping", "ping"), ("m1-module", "module\nwait: true"), ("m1-uri", "uri tasks\nuntil loop")],
        f"1: one cancel, 202, service takes T={duration} s",
        lambda item: f"{item.median:.2f} s" + ("" if item.key == "m1-ping" or not ping1 else f"\nexcess {item.median - ping1.median - duration:.2f} s"),
    )
    ping2 = _measured(series, "m2-ping")
    bars(
        axes[1][0],
        [("m2-ping", "ping"), ("m2-warm", "cancel 200\nwarm token cache"), ("m2-cold", "cancel 200\ncold token cache")],
        "2: one task, cancel answered 200 vs ping",
        lambda item: f"{item.median:.2f} s" + ("" if item.key == "m2-ping" or not ping2 else f"\n{(item.median - ping2.median) * 1000:+.0f} ms"),
    )

    # 4: token requests per play.
    ax = axes[1][1]
    keys = (("m4-cache", "token_cache: true"), ("m4-nocache", "token_cache: false"))
    labels = [label for key, label in keys if key in series and series[key].counts]
    values = [statistics.median(series[key].counts) for key, label in keys if key in series and series[key].counts]
    if values:
        ax.bar(range(len(values)), values, color=["#55a868", "#c44e52"][: len(values)])
        ax.set_xticks(list(range(len(values))))
        ax.set_xticklabels(labels)
        for position, value in enumerate(values):
            ax.annotate(f"{value:g}", (position, value), textcoords="offset points", xytext=(0, 4), ha="center")
        ax.set_ylim(0, max(values) * 1.2)
        ax.axhline(1, color="#333333", linestyle=":", linewidth=1, label="target: 1 per play")
        ax.legend(loc="upper left")
    ax.set_title(f"4: token requests in a play of {bench.plan.token_play_size} cancels")
    ax.set_ylabel("token requests (median)")
    ax.grid(True, axis="y", alpha=0.3)

    figure.tight_layout(rect=(0, 0, 1, 0.96))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def parse_args(argv: t.Optional[t.List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ansible-venv", required=True, help="venv with ansible-core, requests and msal (modules and ansible-playbook)")
    parser.add_argument("--collections-path", required=True, help="directory that contains ansible_collections/ with the installed collection")
    parser.add_argument("--emulator-state", required=True, help="state dir of a running emulator (emulator.json)")
    parser.add_argument("--work-dir", required=True, help="scratch directory for token caches, vars and ansible temp files")
    parser.add_argument("--results-dir", default=str(BENCH_DIR / "results"))
    parser.add_argument("--reps", type=int, default=5, help="repetitions per scenario (default 5)")
    parser.add_argument("--quick", action="store_true", help="1 repetition, short T and small N: a smoke run")
    parser.add_argument("--only", default="m1,m2,m3,m4,profile", help="comma-separated subset of m1,m2,m3,m4,profile")
    parser.add_argument("--started", type=float, help="epoch seconds when run.sh started, for the total run time")
    parser.add_argument("--no-quiet-gate", action="store_true", help="do not wait for other processes to calm down before each run")
    parser.add_argument("--quiet-gate-budget", type=float, default=180, help="seconds the quiet gate may wait in all (default 180)")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def main(argv: t.Optional[t.List[str]] = None) -> int:
    args = parse_args(argv)
    if args.quick:
        plan = Plan(reps=1, overhead_reps=1, t_wait=2, t_role=2, offer_counts=[1, 3], token_play_size=10, token_reps=1, profile_reps=3, quick=True)
    else:
        plan = Plan(
            reps=args.reps,
            overhead_reps=2 * args.reps,
            t_wait=5,
            t_role=3,
            offer_counts=[1, 5, 10, 20],
            token_play_size=10,
            token_reps=min(args.reps, 2),
            profile_reps=max(args.reps, 5),
            quick=False,
        )
    only = {item.strip() for item in args.only.split(",") if item.strip()}
    unknown = only - {"m1", "m2", "m3", "m4", "profile"}
    if unknown:
        log(f"unknown measurement(s): {', '.join(sorted(unknown))}")
        return 2
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    results = Path(args.results_dir)
    (results / "raw").mkdir(parents=True, exist_ok=True)

    bench = Bench(args, plan)
    bench.profile["load"] = {"start": os.getloadavg()[0]}
    bench.attempt("warm-up", bench.warm_up)
    steps = (  # key, label, action, share of the quiet gate's budget
        ("m2", "2: one task, cancel 200 vs ping", bench.measure_overhead, 0.25),
        ("m1", "1: one cancel with wait vs uri tasks", bench.measure_wait, 0.25),
        ("m4", "4: token requests per play", bench.measure_tokens, 0.05),
        ("profile", "where the time goes", bench.measure_profile, 0.05),
        ("m3", "3: role vs naive loop", bench.measure_many, 0.4),
    )
    for key, label, action, share in steps:
        if key in only:
            bench.attempt(label, action, share)
    bench.profile["load"]["end"] = os.getloadavg()[0]

    machine = bench.machine()
    total = time.time() - args.started if args.started else None
    write_markdown(bench, results / "latest.md", machine, total)
    raw = {
        "plan": dataclasses.asdict(plan),
        "quiet_gate": bench.gate,
        "machine": machine,
        "series": {key: item.as_dict() for key, item in bench.series.items()},
        "profile": bench.profile,
        "failures": bench.failures,
    }
    (results / "raw" / "latest.json").write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    plot(bench, results / "latest.png")
    log(f"wrote {results / 'latest.md'} and {results / 'latest.png'} (raw data in {results / 'raw' / 'latest.json'})")
    for row in bench.rows:
        if row.met is not None:
            log(f"  target {'met' if row.met else 'MISSED'}: {row.series.label}: {row.derived} (target {row.target})")
    if bench.failures:
        log("failures:\n  " + "\n  ".join(bench.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
