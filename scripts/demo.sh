#!/usr/bin/env bash
# Demo: cancel a running Azure Marketplace offer operation with the built collection, against the local
# Cloud Partner Portal emulator, and show that the module is idempotent.
#
# It ensures the Python 3.11 tool venv (.work/venvs/core219-py311), starts the emulator with its demo
# preset, builds the collection and installs the tarball into .work/demo/collections, exports the
# emulator's credentials as CLOUDPARTNER_* variables (as an AWX credential would inject them), and runs
# examples/cancel_operation.yml twice: the first run must report changed=1, the second changed=0.
# Exit status 0 only if both held. The emulator is stopped on exit, also on failure or Ctrl-C.
# Linux, bash >= 4. Everything it writes stays in .work/: the tools run with HOME=.work/home and
# TMPDIR=.work/tmp (isolate_home in scripts/lib/common.sh), the token cache is .work/demo/token-cache.
#
# Usage: scripts/demo.sh
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly VENV_NAME=core219-py311
readonly VENV_PY_VERSION=3.11
readonly VENV=$VENVS_DIR/$VENV_NAME
readonly DEMO_DIR=$WORK_DIR/demo
readonly EMULATOR_STATE=$DEMO_DIR/emulator
readonly DEMO_COLLECTIONS=$DEMO_DIR/collections
readonly PLAYBOOK=$REPO_ROOT/examples/cancel_operation.yml
readonly PUBLISHER_ID=contoso
readonly OFFER_ID=running-202

EMULATOR_STARTED=0

banner() {
    printf '\n=== %s\n' "$*"
}

cleanup() {
    local rc=$?
    if [[ $EMULATOR_STARTED == 1 ]]; then
        log "stopping the emulator"
        emulator_stop "$VENV" "$EMULATOR_STATE" || log "WARNING: could not stop the emulator"
    fi
    exit "$rc"
}

# Export the emulator's endpoints and service principal like an AWX credential injects them.
# Values travel NUL-separated so that no secret is ever echoed or eval'ed; only names are printed.
export_credentials() {
    local name value
    while IFS= read -r -d '' name && IFS= read -r -d '' value; do
        export "$name=$value"
    done < <("$VENV/bin/python" - "$EMULATOR_STATE/emulator.json" <<'PY'
import json
import sys

with open(sys.argv[1], encoding='utf-8') as handle:
    emulator = json.load(handle)
mapping = {
    'CLOUDPARTNER_API_URL': 'api_url',
    'CLOUDPARTNER_AUTHORITY_HOST': 'authority_host',
    'CLOUDPARTNER_TENANT_ID': 'tenant_id',
    'CLOUDPARTNER_CLIENT_ID': 'client_id',
    'CLOUDPARTNER_CLIENT_SECRET': 'client_secret',
    'CLOUDPARTNER_CA_PATH': 'ca_path',
}
for variable, key in mapping.items():
    sys.stdout.write('%s\0%s\0' % (variable, emulator.get(key) or ''))
PY
    )
    for name in CLOUDPARTNER_API_URL CLOUDPARTNER_AUTHORITY_HOST CLOUDPARTNER_TENANT_ID CLOUDPARTNER_CLIENT_ID \
        CLOUDPARTNER_CLIENT_SECRET CLOUDPARTNER_CA_PATH; do
        [[ -n ${!name:-} ]] || die "emulator.json gave no value for $name"
        if [[ $name == *SECRET* ]]; then
            log "  $name=(hidden, ${#CLOUDPARTNER_CLIENT_SECRET} characters)"
        else
            log "  $name=${!name}"
        fi
    done
    # A token or API version left in the caller's environment would bypass what the demo shows.
    unset CLOUDPARTNER_ACCESS_TOKEN CLOUDPARTNER_API_VERSION
    # A cache home of the demo's own, emptied each time: a token of an earlier run's emulator (another
    # secret, another CA) must not be reused. The module keeps its file in
    # $CLOUDPARTNER_TOKEN_CACHE_DIR/azure_marketplace.cloudpartner/tokens.json and creates that directory itself.
    export CLOUDPARTNER_TOKEN_CACHE_DIR=$DEMO_DIR/token-cache
    rm -rf "$CLOUDPARTNER_TOKEN_CACHE_DIR"
}

# run_playbook N: run the example once; print its output and leave the PLAY RECAP's changed/failed
# counts for localhost in RUN_CHANGED / RUN_FAILED (empty when there is no recap) and the exit status in RUN_RC.
run_playbook() {
    local n=$1 log_file=$DEMO_DIR/run$1.log recap
    banner "Run $n: ansible-playbook examples/cancel_operation.yml"
    set +e
    (cd "$DEMO_DIR" && "$VENV/bin/ansible-playbook" -i localhost, -c local \
        -e "ansible_python_interpreter=$VENV/bin/python" "$PLAYBOOK") 2>&1 | tee "$log_file"
    RUN_RC=${PIPESTATUS[0]}
    set -e
    recap=$(grep -E '^localhost +: ' "$log_file" | tail -n 1 || true)
    RUN_CHANGED=$(sed -n 's/.* changed=\([0-9]*\).*/\1/p' <<<"$recap")
    RUN_FAILED=$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$recap")
    RUN_UNREACHABLE=$(sed -n 's/.* unreachable=\([0-9]*\).*/\1/p' <<<"$recap")
}

# check_run N EXPECTED_CHANGED: one summary line; true if the run succeeded with that changed count.
check_run() {
    local n=$1 expected=$2 verdict=OK
    if [[ $RUN_RC -ne 0 || $RUN_CHANGED != "$expected" || $RUN_FAILED != 0 || $RUN_UNREACHABLE != 0 ]]; then
        verdict=FAILED
    fi
    SUMMARY+=("$(printf '  run %s: changed=%s failed=%s unreachable=%s exit=%s (expected changed=%s) %s' \
        "$n" "${RUN_CHANGED:-?}" "${RUN_FAILED:-?}" "${RUN_UNREACHABLE:-?}" "$RUN_RC" "$expected" "$verdict")")
    [[ $verdict == OK ]]
}

# What the emulator saw, from its control API (informational only).
emulator_offer_state() {
    "$VENV/bin/python" - "$EMULATOR_STATE/emulator.json" "$PUBLISHER_ID" "$OFFER_ID" <<'PY' || true
import json
import ssl
import sys
import urllib.request

with open(sys.argv[1], encoding='utf-8') as handle:
    emulator = json.load(handle)
context = ssl.create_default_context(cafile=emulator['ca_path'])
url = '%s/offers/%s/%s' % (emulator['control_url'].rstrip('/'), sys.argv[2], sys.argv[3])
with urllib.request.urlopen(url, context=context, timeout=10) as response:
    state = json.load(response)
print('  emulator: offer %s/%s status=%s cancellationRequestState=%s cancel POSTs=%s' % (
    sys.argv[2], sys.argv[3], state.get('status'), state.get('cancellationRequestState'), state.get('cancel_posts')))
PY
}

main() {
    local tarball ok=1 start
    start=$(now_us)
    SUMMARY=()
    export NO_COLOR=1 ANSIBLE_NOCOLOR=1
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    isolate_home
    mkdir -p "$DEMO_DIR"
    wait_for_lock "$DEMO_DIR/.lock" "scripts/demo.sh"

    banner "Python $VENV_PY_VERSION venv ($VENV_NAME)"
    ensure_venv "$VENV_NAME" "$VENV_PY_VERSION" 2>&1 | filter_noise

    banner "Emulator (--preset demo)"
    EMULATOR_STARTED=1
    emulator_start "$VENV" "$EMULATOR_STATE" --preset demo 2>&1 | filter_noise

    banner "Build and install the collection"
    tarball=$(build_collection "$VENV" "$DEMO_DIR/dist")
    install_collection "$VENV" "$tarball" "$DEMO_COLLECTIONS"
    log "installed ${tarball##*/} into ${DEMO_COLLECTIONS#"$REPO_ROOT"/}"
    # Only the installed tarball, never a checkout or something in site-packages.
    export ANSIBLE_COLLECTIONS_PATH=$DEMO_COLLECTIONS ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false

    banner "Credentials (environment, like an AWX credential)"
    export_credentials

    run_playbook 1
    check_run 1 1 || ok=0
    run_playbook 2
    check_run 2 0 || ok=0
    # The secret came in through the environment; it must not come out in any output.
    if grep -qF -- "$CLOUDPARTNER_CLIENT_SECRET" "$DEMO_DIR/run1.log" "$DEMO_DIR/run2.log"; then
        SUMMARY+=("  the client secret appears in the playbook output: FAILED")
        ok=0
    else
        SUMMARY+=("  client secret absent from both runs' output: OK")
    fi

    SUMMARY+=("$(emulator_offer_state)")
    # Stop the emulator before the summary, so that the verdict is the last thing printed.
    emulator_stop "$VENV" "$EMULATOR_STATE" 2>&1 | filter_noise
    EMULATOR_STARTED=0

    banner "Summary: $PUBLISHER_ID/$OFFER_ID, $(format_duration $(($(now_us) - start))) s"
    printf '%s\n' "${SUMMARY[@]}"
    if [[ $ok == 1 ]]; then
        printf 'DEMO PASSED: the first run cancelled the operation (changed), the second found nothing to do (ok).\n'
    else
        printf 'DEMO FAILED: expected changed=1 then changed=0, see the runs above (.work/demo/run1.log, run2.log).\n'
        return 1
    fi
}

main "$@"
