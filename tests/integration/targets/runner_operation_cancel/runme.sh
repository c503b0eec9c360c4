#!/usr/bin/env bash
# The role azure_marketplace.cloudpartner.operation_cancel run the way AWX / Automation Platform runs a job:
# ansible-runner on a private data dir (project/site.yml, inventory, env/envvars, env/extravars, env/cmdline),
# with the job's verbosity at -vvv.
#   job "env":  credentials injected as environment variables, as AWX's "Microsoft Azure Resource Manager"
#               credential does (AZURE_TENANT, AZURE_CLIENT_ID, AZURE_SECRET), plus CLOUDPARTNER_API_URL and
#               CLOUDPARTNER_AUTHORITY_HOST; ca_path as an extra var.
#   job "vars": the same credentials as role variables from a vars file of the project.
# Each job must end successful with rc 0 and the per-offer results in its job events, run one module per offer
# (phase 1) plus ONE wait task for all of them (phase 2), and neither the client secret nor any token the emulator
# issued may appear anywhere in the artifacts directory or runner output.
#
# No xtrace: the secret is handled by runner_helper.py only, never by this script.
set -eu
set -o pipefail

HERE=$(pwd)

# --- the integration config ------------------------------------------------------------------------------
# ansible-test passes `-e @<config>` to runme.sh only for targets of a cloud plugin; otherwise "$@" holds only
# the verbosity flags, and the config is ../../integration_config.yml (the integration dir ansible-test copied).
CONFIG=""
prev=""
for arg in "$@"; do
    if [[ "$prev" == "-e" || "$prev" == "--extra-vars" ]] && [[ "$arg" == @* ]]; then
        CONFIG="${arg#@}"
    fi
    prev="$arg"
done
if [[ -z "$CONFIG" ]]; then
    for candidate in ../../integration_config.yml "${INVENTORY_PATH:+$(dirname "${INVENTORY_PATH}")/integration_config.yml}"; do
        if [[ -n "$candidate" && -f "$candidate" ]]; then
            CONFIG="$candidate"
            break
        fi
    done
fi
if [[ -z "$CONFIG" || ! -f "$CONFIG" ]]; then
    echo "No integration config: start the emulator and write tests/integration/integration_config.yml (scripts/test.sh does)." >&2
    exit 1
fi
CONFIG=$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")

# --- python, ansible-runner, the collection tree under test ------------------------------------------------
PY="${ANSIBLE_TEST_PYTHON_INTERPRETER:-$(command -v python3)}"
PY_BIN=$(dirname "$PY")
if [[ -x "$PY_BIN/ansible-runner" ]]; then
    RUNNER="$PY_BIN/ansible-runner"
else
    RUNNER=$(command -v ansible-runner || true)
fi
if [[ -z "$RUNNER" ]]; then
    echo "ansible-runner is not installed next to $PY nor on PATH" >&2
    exit 1
fi
RUNNER_BIN=$(dirname "$RUNNER")
# ansible-test sets ANSIBLE_COLLECTIONS_PATH to the directory that contains ansible_collections/ of the tree under test
COLLECTIONS="${ANSIBLE_COLLECTIONS_PATH%%:*}"
if [[ -z "$COLLECTIONS" || ! -d "$COLLECTIONS/ansible_collections/azure_marketplace/cloudpartner/roles/operation_cancel" ]]; then
    echo "ANSIBLE_COLLECTIONS_PATH does not lead to the collection under test: '${ANSIBLE_COLLECTIONS_PATH:-}'" >&2
    exit 1
fi

helper() {
    "$PY" "$HERE/runner_helper.py" --config "$CONFIG" "$@"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/runner_operation_cancel.XXXXXX")
# The artifacts of a job hold the injected credential in artifacts/<ident>/command (ansible-runner's design):
# remove everything at the end, as AWX removes a job's private data dir.
trap 'rm -rf "$WORK"' EXIT

echo "runner: $("$RUNNER" --version 2>&1 | tail -n1) at $RUNNER; python $PY; collections $COLLECTIONS"

helper reset

run_job() {
    local job=$1
    local pdd="$WORK/$job/pdd"
    local log="$WORK/$job/runner.log"
    local prefix="runner-$job"
    mkdir -p "$WORK/$job/cache"
    helper offers "$prefix"
    helper pdd "$pdd" --job "$job" --collections "$COLLECTIONS" --python "$PY" \
        --cache "$WORK/$job/cache" --offers "$prefix" --verbosity 3
    local started=$SECONDS rc=0
    # A clean environment, as in an execution environment: only what the private data dir injects is added.
    # ANSIBLE_REMOTE_TMP: ansible expands the default ~/.ansible/tmp with the passwd home even on the local
    # connection; keep the job's temporary files in this run's HOME.
    env -i HOME="$HOME" PATH="$RUNNER_BIN:$PY_BIN:/usr/local/bin:/usr/bin:/bin" LC_ALL=C.UTF-8 LANG=C.UTF-8 \
        ANSIBLE_REMOTE_TMP="${ANSIBLE_REMOTE_TMP:-$HOME/.ansible/tmp}" \
        "$RUNNER" run "$pdd" -p site.yml --ident "$job" >"$log" 2>&1 || rc=$?
    echo "job $job: ansible-runner exited with $rc after $((SECONDS - started)) s"
    # `check` looks for leaks first and exits with 3 when it finds one: then the output is not shown
    local check_rc=0
    helper check "$pdd" --ident "$job" --job "$job" --offers "$prefix" --log "$log" || check_rc=$?
    if [[ $check_rc -eq 3 ]]; then
        return 1
    elif [[ $check_rc -ne 0 ]]; then
        echo "job $job failed its checks; the end of its output (free of secrets, checked above):" >&2
        tail -n 80 "$log" >&2 || true
        return 1
    fi
    [[ $rc -eq 0 ]]
}

run_job env
run_job vars
echo "runner_operation_cancel: all jobs passed"
