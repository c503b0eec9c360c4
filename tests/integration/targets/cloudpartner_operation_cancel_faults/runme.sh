#!/usr/bin/env bash
# Failure paths of cloudpartner_operation_cancel (issue "Reliability, security and speed") against the emulator's
# transient faults. One small playbook per case (playbooks/), run with ansible-playbook -vvv and the credentials
# only in the process environment, as AWX injects them. Per case:
#   (a) the playbook asserts the module result (register + assert);
#   (b) faults_ctl.py asserts what the emulator saw: request counts, gaps between attempts, the auth of every
#       request, which listener, token requests;
#   (c) ../cloudpartner_operation_cancel_env/emu_ctl.py check-leaks: neither the client secret nor any token the
#       emulator issued appears in the saved stdout+stderr (nor does any "Traceback").
# xtrace is on, except around the lines that handle a secret value.
set -eux
set -o pipefail

HERE=$(pwd)
ENV_TARGET=$HERE/../cloudpartner_operation_cancel_env
START=$SECONDS

# --- the integration config (same lookup as cloudpartner_operation_cancel_env) --------------------------
CONFIG=""
prev=""
for arg in "$@"; do
    if [[ "$prev" == "-e" || "$prev" == "--extra-vars" ]] && [[ "$arg" == @* ]]; then
        CONFIG="${arg#@}"
    fi
    prev="$arg"
done
if [[ -z "$CONFIG" ]]; then
    for candidate in ../../integration_config.yml "${INVENTORY_PATH:+$(dirname "$INVENTORY_PATH")/integration_config.yml}"; do
        if [[ -n "$candidate" && -f "$candidate" ]]; then
            CONFIG="$candidate"
            break
        fi
    done
fi
if [[ -z "$CONFIG" || ! -f "$CONFIG" ]]; then
    echo "No integration config: start the emulator and write tests/integration/integration_config.yml (scripts/test.sh)." >&2
    exit 1
fi
CONFIG=$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")

# --- a python with PyYAML (the one running ansible) -------------------------------------------------------
PY=""
for candidate in "${ANSIBLE_TEST_PYTHON_INTERPRETER:-}" python python3; do
    if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' >/dev/null 2>&1; then
        PY=$(command -v "$candidate")
        break
    fi
done
if [[ -z "$PY" ]]; then
    PY=$(head -n1 "$(command -v ansible-playbook)" | sed -e 's/^#! *//' -e 's/ .*//')
fi

ctl() {
    "$PY" "$ENV_TARGET/emu_ctl.py" --config "$CONFIG" "$@"
}
fctl() {
    "$PY" "$HERE/faults_ctl.py" --config "$CONFIG" "$@"
}

# non-secret details: EMU_API_URL, EMU_AUTHORITY_HOST, EMU_CA_PATH, EMU_TENANT_ID, EMU_CLIENT_ID, EMU_PUBLISHER_ID, ...
eval "$(ctl show)"

OUT="${OUTPUT_DIR:-$(mktemp -d)}/cloudpartner_faults"
rm -rf "$OUT"
mkdir -p "$OUT"
TOKEN_STORE="$OUT/tokens.json"
cleanup() {
    rm -rf "$TOKEN_STORE" "$OUT"/token-cache-*
    # leave the login settings as every other target expects them
    fctl settings '{"token_lifetime": 3599, "token_error": null}' >/dev/null 2>&1 || true
}
trap cleanup EXIT

INVENTORY="$OUT/inventory"
echo "testhost ansible_connection=local ansible_python_interpreter=$PY" >"$INVENTORY"
FORKS_INVENTORY="$OUT/inventory-forks"
for n in 1 2 3 4 5; do
    echo "fork$n ansible_connection=local ansible_python_interpreter=$PY"
done >"$FORKS_INVENTORY"

set +x
SECRET=$(ctl secret)
export SECRET
set -x
test -n "${SECRET:+set}"
# not real secrets, but the modules must not print them either
WRONG_TOKEN="wrong-token-$RANDOM-$RANDOM-cloudpartner"
export LEAK_EXTRA_SECRETS="$WRONG_TOKEN"

ctl reset
fctl settings '{"token_lifetime": 3599, "token_error": null}'

CRED_VARS=(
    CLOUDPARTNER_API_URL CLOUDPARTNER_API_VERSION CLOUDPARTNER_ACCESS_TOKEN
    CLOUDPARTNER_TENANT_ID CLOUDPARTNER_CLIENT_ID CLOUDPARTNER_CLIENT_SECRET CLOUDPARTNER_AUTHORITY_HOST
    AZURE_TENANT AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_SECRET AZURE_CLIENT_SECRET AZURE_AUTHORITY_HOST
    CLOUDPARTNER_TOKEN_CACHE CLOUDPARTNER_TOKEN_CACHE_PATH
)

offer() {
    ctl offer "$1" "$2"
}

TIMES=()

# run_case NAME PLAYBOOK [--access-token SECONDS] [--no-token-cache] [--forks] [-- PLAYBOOK ARGS]
#   --access-token S   CLOUDPARTNER_ACCESS_TOKEN = a token issued just before the run, valid S seconds, and no
#                      client credentials; otherwise CLOUDPARTNER_TENANT_ID / _CLIENT_ID / _CLIENT_SECRET
#   --no-token-cache   CLOUDPARTNER_TOKEN_CACHE=false
#   --forks            the 5-host inventory, -f 5, results saved to NAME.result.json
# Every case gets a fresh CLOUDPARTNER_TOKEN_CACHE_PATH (token-cache-NAME), shared by the forks of the forks case.
# FAULT_CASES=name,name (environment) runs only those cases: a debugging aid, never set by ansible-test.
run_case() {
    local name=$1 playbook=$2
    shift 2
    if [[ -n "${FAULT_CASES:-}" && ",${FAULT_CASES}," != *",${name},"* ]]; then
        echo "case ${name}: skipped (FAULT_CASES=${FAULT_CASES})"
        return 0
    fi
    local access_token="" no_cache="" forks="" playbook_args=()
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --access-token) access_token=$2; shift 2 ;;
            --no-token-cache) no_cache=1; shift ;;
            --forks) forks=1; shift ;;
            --) shift; playbook_args=("$@"); break ;;
            *) echo "run_case: unknown option $1" >&2; return 2 ;;
        esac
    done
    local log="$OUT/$name.log" result="$OUT/$name.result.json" inventory=$INVENTORY
    local check_args=()
    if [[ -n "$forks" ]]; then
        inventory=$FORKS_INVENTORY
        playbook_args+=(-f 5 -e "result_file=$result")
        check_args+=(--result "$result")
    fi
    local mark tokens_before started started_clock rc=0
    mark=$(ctl mark)
    tokens_before=$(fctl token-requests)
    started=$SECONDS
    # the emulator logs time.monotonic(); CLOCK_MONOTONIC is the same for every process of this machine
    started_clock=$("$PY" -c 'import time; print(time.monotonic())')
    (
        set +x
        unset "${CRED_VARS[@]}"
        export CLOUDPARTNER_API_URL="$EMU_API_URL"
        if [[ -n "$access_token" ]]; then
            CLOUDPARTNER_ACCESS_TOKEN=$(fctl token "$access_token")
            export CLOUDPARTNER_ACCESS_TOKEN
        else
            export CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" CLOUDPARTNER_TENANT_ID="$EMU_TENANT_ID"
            export CLOUDPARTNER_CLIENT_ID="$EMU_CLIENT_ID" CLOUDPARTNER_CLIENT_SECRET="$SECRET"
        fi
        unset SECRET
        export CLOUDPARTNER_TOKEN_CACHE_PATH="$OUT/token-cache-$name/tokens.json"
        [[ -z "$no_cache" ]] || export CLOUDPARTNER_TOKEN_CACHE=false
        if [[ -n "$access_token" ]]; then
            echo "case ${name}: credentials in the environment: CLOUDPARTNER_ACCESS_TOKEN (valid ${access_token} s)"
        else
            echo "case ${name}: credentials in the environment: CLOUDPARTNER_TENANT_ID CLOUDPARTNER_CLIENT_ID CLOUDPARTNER_CLIENT_SECRET"
        fi
        # fewer ssh-style steps per task on the local connection: the cases stay short
        export ANSIBLE_PIPELINING=True
        exec ansible-playbook -vvv -i "$inventory" "$HERE/playbooks/$playbook" \
            -e "publisher_id=${EMU_PUBLISHER_ID} ca_path=${EMU_CA_PATH}" "${playbook_args[@]}"
    ) >"$log" 2>&1 || rc=$?
    TIMES+=("$name $((SECONDS - started))s")

    # (c) first, so that a failing case never prints a secret
    ctl check-leaks --store "$TOKEN_STORE" "$log"
    grep -q 'ESTABLISH LOCAL CONNECTION' "$log"
    if grep -n 'Traceback' "$log" >&2; then
        echo "case ${name}: a Traceback in the output" >&2
        return 1
    fi
    # (a)
    if [[ $rc -ne 0 ]]; then
        echo "case ${name}: ansible-playbook failed (rc ${rc}); its output:" >&2
        cat "$log" >&2
        return 1
    fi
    # (b)
    fctl check "$name" --since "$mark" --tokens-before "$tokens_before" --started "$started_clock" "${check_args[@]}"
    echo "case ${name}: ok ($((SECONDS - started)) s)"
}

# --- retries ------------------------------------------------------------------------------------------------
offer flt-429 '{"state": "running", "cancel": {"status": 200}, "faults": [{"on": "cancel", "status": 429, "retry_after": 2}]}'
run_case retry_429_post retry_429_post.yml

for status in 500 502 503 504; do
    offer "flt-post-$status" "{\"state\": \"running\", \"cancel\": {\"status\": 200}, \"faults\": [{\"on\": \"cancel\", \"status\": $status}]}"
    offer "flt-poll-$status" "{\"state\": \"running\", \"cancel\": {\"status\": 202, \"location\": \"relative\", \"duration\": 1}, \"faults\": [{\"on\": \"poll\", \"status\": $status}]}"
done
run_case retry_5xx_post retry_5xx_post.yml
run_case retry_5xx_poll retry_5xx_poll.yml

offer flt-reset-post '{"state": "running", "cancel": {"status": 200}, "faults": [{"on": "cancel", "reset": true}]}'
offer flt-reset-poll '{"state": "running", "cancel": {"status": 202, "location": "both", "duration": 1}, "faults": [{"on": "poll", "reset": true}]}'
run_case connection_reset connection_reset.yml

# --- answers slower than timeout ------------------------------------------------------------------------------
offer flt-slow-list '{"state": "running", "cancel": {"status": 200}, "faults": [{"on": "list", "delay": 3}]}'
run_case timeout_list_retried timeout_list_retried.yml
offer flt-slow-list-always '{"state": "running", "cancel": {"status": 200}, "faults": [{"on": "list", "delay": 3, "times": 5}]}'
run_case timeout_list_persistent timeout_list_persistent.yml

# --- unreadable answers and odd locations ---------------------------------------------------------------------
offer flt-malformed-list '{"state": "running", "cancel": {"status": 200}, "faults": [{"on": "list", "malformed": true}]}'
offer flt-malformed-poll '{"state": "running", "cancel": {"status": 202, "location": "absolute", "duration": 1}, "faults": [{"on": "poll", "malformed": true}]}'
run_case malformed_json malformed_json.yml

offer flt-noloc '{"state": "running", "cancel": {"status": 202, "location": "none", "duration": 2}}'
run_case no_location no_location.yml

offer flt-foreign '{"state": "running", "cancel": {"status": 202, "location": "foreign", "duration": 2}}'
run_case foreign_location foreign_location.yml

# --- the access token expiring during a long wait --------------------------------------------------------------
fctl settings '{"token_lifetime": 3}'
offer flt-expiry '{"state": "running", "cancel": {"status": 202, "location": "relative", "duration": 8}}'
run_case token_expiry_refresh token_expiry_refresh.yml --no-token-cache
fctl settings '{"token_lifetime": 3599}'

# The token is issued just before ansible-playbook starts, and under ansible-test the first request comes up to
# ~3 s later: 6 s (not 3) so that the cancel is surely sent with it and the token expires during the wait.
offer flt-expiry-given '{"state": "running", "cancel": {"status": 202, "location": "relative", "duration": 10}}'
run_case token_expiry_given token_expiry_given.yml --access-token 6

# --- how the wait ends ------------------------------------------------------------------------------------------
offer flt-end-completed '{"state": "running", "cancel": {"status": 202, "duration": 1, "final_status": "completed"}}'
offer flt-end-failed '{"state": "running", "cancel": {"status": 202, "duration": 1, "final_status": "failed"}}'
run_case terminal_other terminal_other.yml

offer flt-wait-timeout '{"state": "running", "cancel": {"status": 202, "location": "relative", "duration": 60}}'
run_case wait_timeout wait_timeout.yml

# --- parallel forks and token reuse -----------------------------------------------------------------------------
offer flt-forks '{"state": "running", "cancel": {"status": 202, "location": "relative", "duration": 3}}'
run_case forks forks.yml --forks

reuse_offers() {
    local index
    for index in 0 1 2 3 4 5 6 7 8 9; do
        if ((index % 2)); then
            offer "flt-reuse-$index" '{"state": "running", "cancel": {"status": 200}}'
        else
            offer "flt-reuse-$index" '{"state": "idle"}'
        fi
    done
}
reuse_offers
run_case token_reuse_cache token_reuse.yml
reuse_offers
run_case token_reuse_nocache token_reuse.yml --no-token-cache

# --- bad input ----------------------------------------------------------------------------------------------------
offer flt-bad-input '{"state": "running", "cancel": {"status": 200}}'
run_case bad_input bad_input.yml

# last, every log against every token the emulator issued during the whole target
ctl check-leaks --store "$TOKEN_STORE" "$OUT"/*.log
set +x
echo "case durations: ${TIMES[*]}"
echo "all fault cases passed in $((SECONDS - START)) s"
