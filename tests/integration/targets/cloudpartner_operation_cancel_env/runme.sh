#!/usr/bin/env bash
# Credentials only in the process environment, exactly as AWX / Automation Platform inject them
# (not through the `environment:` keyword), with ansible-playbook -vvv. After every run, the saved
# stdout+stderr must contain neither the client secret nor any token the emulator ever issued.
#
# xtrace is on, except around the lines that handle a secret value.
set -eux
set -o pipefail

HERE=$(pwd)

# --- find the integration config ---------------------------------------------------------------
# ansible-test passes `-e @<config>` to runme.sh only for targets that use a cloud plugin; for plain
# targets "$@" holds only the verbosity flags. So take it from "$@" when it is there, and otherwise
# from the integration dir that ansible-test copied (../../integration_config.yml from the target dir).
CONFIG=""
CONFIG_FROM=""
prev=""
for arg in "$@"; do
    if [[ "$prev" == "-e" || "$prev" == "--extra-vars" ]] && [[ "$arg" == @* ]]; then
        CONFIG="${arg#@}"
        CONFIG_FROM="ansible-test arguments"
    fi
    prev="$arg"
done
if [[ -z "$CONFIG" ]]; then
    for candidate in ../../integration_config.yml "${INVENTORY_PATH:+$(dirname "$INVENTORY_PATH")/integration_config.yml}"; do
        if [[ -n "$candidate" && -f "$candidate" ]]; then
            CONFIG="$candidate"
            CONFIG_FROM="integration dir"
            break
        fi
    done
fi
if [[ -z "$CONFIG" || ! -f "$CONFIG" ]]; then
    echo "No integration config: start the emulator and write tests/integration/integration_config.yml (scripts/test.sh)." >&2
    exit 1
fi
CONFIG=$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")
echo "integration config from ${CONFIG_FROM}: ${CONFIG}"

# --- a python with PyYAML (the one running ansible) ----------------------------------------------
PY=""
for candidate in "${ANSIBLE_TEST_PYTHON_INTERPRETER:-}" python python3; do
    if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' >/dev/null 2>&1; then
        PY="$candidate"
        break
    fi
done
if [[ -z "$PY" ]]; then
    PY=$(head -n1 "$(command -v ansible-playbook)" | sed -e 's/^#! *//' -e 's/ .*//')
fi

ctl() {
    "$PY" "$HERE/emu_ctl.py" --config "$CONFIG" "$@"
}

# non-secret details: EMU_API_URL, EMU_AUTHORITY_HOST, EMU_CA_PATH, EMU_TENANT_ID, EMU_CLIENT_ID, ...
eval "$(ctl show)"

OUT="${OUTPUT_DIR:-$(mktemp -d)}/cloudpartner_env"
rm -rf "$OUT"
mkdir -p "$OUT"
TOKEN_STORE="$OUT/tokens.json"
# the playbook logs stay (they were checked to hold no secret); the token store and the token caches go
cleanup() {
    rm -rf "$TOKEN_STORE" "$OUT"/token-cache-*
}
trap cleanup EXIT

if [[ -n "${INVENTORY_PATH:-}" && -f "${INVENTORY_PATH}" ]]; then
    INVENTORY="$INVENTORY_PATH"
else
    INVENTORY="$OUT/inventory"
    echo "testhost ansible_connection=local" > "$INVENTORY"
fi

# Values that look like secrets but are wrong. They are not real secrets, yet the module must not print
# them either, so the leak check looks for them too.
WRONG_SECRET="wrong-secret-$RANDOM-$RANDOM-cloudpartner"
WRONG_TOKEN="wrong-token-$RANDOM-$RANDOM-cloudpartner"
export LEAK_EXTRA_SECRETS="$WRONG_SECRET $WRONG_TOKEN"
WRONG_GUID=00000000-0000-4000-8000-000000000000
UNREACHABLE_URL=https://127.0.0.1:9

# the real secret, read with xtrace off
set +x
SECRET=$(ctl secret)
export SECRET
set -x
test -n "${SECRET:+set}"

ctl reset

# Every credential variable the module knows, so that each case starts from a clean environment.
CRED_VARS=(
    CLOUDPARTNER_API_URL CLOUDPARTNER_API_VERSION CLOUDPARTNER_ACCESS_TOKEN
    CLOUDPARTNER_TENANT_ID CLOUDPARTNER_CLIENT_ID CLOUDPARTNER_CLIENT_SECRET CLOUDPARTNER_AUTHORITY_HOST
    AZURE_TENANT AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_SECRET AZURE_CLIENT_SECRET AZURE_AUTHORITY_HOST
    CLOUDPARTNER_CA_PATH CLOUDPARTNER_VALIDATE_CERTS CLOUDPARTNER_TIMEOUT CLOUDPARTNER_RETRIES
    TEST_EXPLICIT_SECRET CLOUDPARTNER_TOKEN_CACHE CLOUDPARTNER_TOKEN_CACHE_DIR CLOUDPARTNER_TOKEN_CACHE_PATH
)

# run_case NAME EXPECT OFFER_SCENARIO_JSON EXPECT_ARGS -- [VAR=VALUE-REF ...] [-- ansible-playbook args]
#   VAR=@SECRET        the real client secret     VAR=@TOKEN   a token issued for this case
#   VAR=@WRONG_SECRET  a wrong secret             VAR=@WRONG_TOKEN a token nobody issued
#   VAR=literal        a non-secret value
# The values are resolved and exported with xtrace off, in a subshell, so they are in the process
# environment of ansible-playbook only and never on a command line. The playbook passes ca_path=EMU_CA_PATH
# unless the ansible-playbook args say `-e ca_path=` (then no ca_path option at all).
run_case() {
    local name=$1 expect=$2 scenario=$3 expect_args=$4
    shift 4
    local offer="env-${name}"
    local log="$OUT/${name}.log"
    local assignments=() playbook_args=()
    [[ "${1:-}" == "--" ]] && shift
    while [[ $# -gt 0 && "$1" != "--" ]]; do assignments+=("$1"); shift; done
    [[ "${1:-}" == "--" ]] && shift
    playbook_args=("$@")

    ctl offer "$offer" "$scenario"
    local mark
    mark=$(ctl mark)
    local rc=0
    (
        set +x
        unset "${CRED_VARS[@]}"
        local token=""
        for assignment in "${assignments[@]}"; do
            local var=${assignment%%=*} value=${assignment#*=}
            case "$value" in
                @SECRET) value=$SECRET ;;
                @WRONG_SECRET) value=$WRONG_SECRET ;;
                @WRONG_TOKEN) value=$WRONG_TOKEN ;;
                @TOKEN) [[ -n "$token" ]] || token=$(ctl token); value=$token ;;
            esac
            export "$var=$value"
        done
        unset SECRET
        # a fresh token cache per case, as in a new AWX job (the modules cache tokens by default)
        mkdir -p "$OUT/token-cache-${name}"
        export CLOUDPARTNER_TOKEN_CACHE_DIR="$OUT/token-cache-${name}"
        echo "case ${name}: environment has ${assignments[*]%%=*}"
        exec ansible-playbook -vvv -i "$INVENTORY" "$HERE/cancel.yml" \
            -e "expect=${expect} offer_id=${offer} publisher_id=${EMU_PUBLISHER_ID} ca_path=${EMU_CA_PATH}" \
            "${playbook_args[@]}"
    ) >"$log" 2>&1 || rc=$?

    # the leak check runs first, so that a failing case never prints a secret
    ctl check-leaks --store "$TOKEN_STORE" "$log"
    # and it looked at real -vvv output (connection details only appear from -vvv on)
    grep -q 'ESTABLISH LOCAL CONNECTION' "$log"
    if [[ $rc -ne 0 ]]; then
        echo "case ${name}: ansible-playbook failed (rc ${rc}); its output:" >&2
        cat "$log" >&2
        return 1
    fi
    # shellcheck disable=SC2086
    ctl expect --since "$mark" --offer "${EMU_PUBLISHER_ID}/${offer}" $expect_args
    echo "case ${name}: ok"
}

OK_200='{"state": "running", "cancel": {"status": 200}}'
FORBIDDEN='{"state": "running", "error": {"on": "cancel", "status": 403, "code": "Forbidden", "message": "The principal has no access (env403)."}}'

# (a) CLOUDPARTNER_* only
run_case a_cloudpartner cancelled "$OK_200" "--cancel-posts 1 --min-token-posts 1 --auth valid" -- \
    CLOUDPARTNER_API_URL="$EMU_API_URL" CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" \
    CLOUDPARTNER_TENANT_ID="$EMU_TENANT_ID" CLOUDPARTNER_CLIENT_ID="$EMU_CLIENT_ID" CLOUDPARTNER_CLIENT_SECRET=@SECRET

# (b) what AWX's "Microsoft Azure Resource Manager" credential injects, plus the API and authority URLs
run_case b_awx_azure cancelled "$OK_200" "--cancel-posts 1 --min-token-posts 1 --auth valid" -- \
    CLOUDPARTNER_API_URL="$EMU_API_URL" CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" \
    AZURE_TENANT="$EMU_TENANT_ID" AZURE_CLIENT_ID="$EMU_CLIENT_ID" AZURE_SECRET=@SECRET

# (b2) the other Azure spellings: AZURE_TENANT_ID, AZURE_CLIENT_SECRET, AZURE_AUTHORITY_HOST
run_case b2_azure_alt cancelled "$OK_200" "--cancel-posts 1 --min-token-posts 1 --auth valid" -- \
    CLOUDPARTNER_API_URL="$EMU_API_URL" AZURE_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" \
    AZURE_TENANT_ID="$EMU_TENANT_ID" AZURE_CLIENT_ID="$EMU_CLIENT_ID" AZURE_CLIENT_SECRET=@SECRET

# (c1) CLOUDPARTNER_* beats AZURE_*: wrong AZURE_* values everywhere are ignored
run_case c1_cp_beats_azure cancelled "$OK_200" "--cancel-posts 1 --min-token-posts 1 --auth valid" -- \
    CLOUDPARTNER_API_URL="$EMU_API_URL" \
    CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" AZURE_AUTHORITY_HOST="$UNREACHABLE_URL" \
    CLOUDPARTNER_TENANT_ID="$EMU_TENANT_ID" AZURE_TENANT=wrong-tenant.example.com AZURE_TENANT_ID=wrong-tenant.example.com \
    CLOUDPARTNER_CLIENT_ID="$EMU_CLIENT_ID" AZURE_CLIENT_ID="$WRONG_GUID" \
    CLOUDPARTNER_CLIENT_SECRET=@SECRET AZURE_SECRET=@WRONG_SECRET AZURE_CLIENT_SECRET=@WRONG_SECRET

# (c2) among the Azure names, AZURE_SECRET beats AZURE_CLIENT_SECRET
run_case c2_azure_secret_order cancelled "$OK_200" "--cancel-posts 1 --min-token-posts 1" -- \
    CLOUDPARTNER_API_URL="$EMU_API_URL" CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" \
    AZURE_TENANT="$EMU_TENANT_ID" AZURE_CLIENT_ID="$EMU_CLIENT_ID" AZURE_SECRET=@SECRET AZURE_CLIENT_SECRET=@WRONG_SECRET

# (c3) an explicit client_secret beats a wrong CLOUDPARTNER_CLIENT_SECRET
run_case c3_explicit_secret_wins cancelled "$OK_200" "--cancel-posts 1 --min-token-posts 1" -- \
    CLOUDPARTNER_API_URL="$EMU_API_URL" CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" \
    CLOUDPARTNER_TENANT_ID="$EMU_TENANT_ID" CLOUDPARTNER_CLIENT_ID="$EMU_CLIENT_ID" \
    CLOUDPARTNER_CLIENT_SECRET=@WRONG_SECRET TEST_EXPLICIT_SECRET=@SECRET \
    -- -e explicit_secret_from=TEST_EXPLICIT_SECRET

# (c4) an explicit wrong client_secret beats a right CLOUDPARTNER_CLIENT_SECRET: AADSTS7000215 shown, secret not
run_case c4_explicit_wrong_secret bad_secret "$OK_200" "--cancel-posts 0 --min-token-posts 1" -- \
    CLOUDPARTNER_API_URL="$EMU_API_URL" CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" \
    CLOUDPARTNER_TENANT_ID="$EMU_TENANT_ID" CLOUDPARTNER_CLIENT_ID="$EMU_CLIENT_ID" \
    CLOUDPARTNER_CLIENT_SECRET=@SECRET TEST_EXPLICIT_SECRET=@WRONG_SECRET \
    -- -e explicit_secret_from=TEST_EXPLICIT_SECRET
grep -q AADSTS7000215 "$OUT/c4_explicit_wrong_secret.log"

# (c5) an explicit api_url beats CLOUDPARTNER_API_URL (which points nowhere)
run_case c5_explicit_api_url cancelled "$OK_200" "--cancel-posts 1 --min-token-posts 1" -- \
    CLOUDPARTNER_API_URL="$UNREACHABLE_URL" CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" \
    CLOUDPARTNER_TENANT_ID="$EMU_TENANT_ID" CLOUDPARTNER_CLIENT_ID="$EMU_CLIENT_ID" CLOUDPARTNER_CLIENT_SECRET=@SECRET \
    -- -e "explicit_api_url=$EMU_API_URL"

# bad secret from the environment only
run_case e1_bad_secret_env bad_secret "$OK_200" "--cancel-posts 0 --min-token-posts 1" -- \
    CLOUDPARTNER_API_URL="$EMU_API_URL" CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" \
    AZURE_TENANT="$EMU_TENANT_ID" AZURE_CLIENT_ID="$EMU_CLIENT_ID" AZURE_SECRET=@WRONG_SECRET
grep -q AADSTS7000215 "$OUT/e1_bad_secret_env.log"

# the 403 error path with credentials from the environment
run_case e2_forbidden forbidden "$FORBIDDEN" "--cancel-posts 1 --min-token-posts 1" -- \
    CLOUDPARTNER_API_URL="$EMU_API_URL" CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" \
    AZURE_TENANT="$EMU_TENANT_ID" AZURE_CLIENT_ID="$EMU_CLIENT_ID" AZURE_SECRET=@SECRET
grep -q 'HTTP 403' "$OUT/e2_forbidden.log"

# (a2) the CA only through CLOUDPARTNER_CA_PATH, as an AWX custom credential injects it: no ca_path option, and
# REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (here a missing file) must not win over it, for the API nor the authority
run_case a2_ca_path_env cancelled "$OK_200" "--cancel-posts 1 --min-token-posts 1 --auth valid" -- \
    REQUESTS_CA_BUNDLE="$OUT/no-such-bundle.pem" CURL_CA_BUNDLE="$OUT/no-such-bundle.pem" \
    CLOUDPARTNER_API_URL="$EMU_API_URL" CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" CLOUDPARTNER_CA_PATH="$EMU_CA_PATH" \
    CLOUDPARTNER_TENANT_ID="$EMU_TENANT_ID" CLOUDPARTNER_CLIENT_ID="$EMU_CLIENT_ID" CLOUDPARTNER_CLIENT_SECRET=@SECRET \
    -- -e ca_path=

# (d) CLOUDPARTNER_ACCESS_TOKEN: no token is requested
run_case d1_access_token cancelled "$OK_200" "--cancel-posts 1 --token-posts 0 --auth valid" -- \
    CLOUDPARTNER_API_URL="$EMU_API_URL" CLOUDPARTNER_ACCESS_TOKEN=@TOKEN

# (d2) CLOUDPARTNER_ACCESS_TOKEN wins over client credentials in the environment (wrong ones are never used)
run_case d2_access_token_wins cancelled "$OK_200" "--cancel-posts 1 --token-posts 0 --auth valid" -- \
    CLOUDPARTNER_API_URL="$EMU_API_URL" CLOUDPARTNER_ACCESS_TOKEN=@TOKEN CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" \
    AZURE_TENANT="$EMU_TENANT_ID" AZURE_CLIENT_ID="$EMU_CLIENT_ID" AZURE_SECRET=@WRONG_SECRET

# (d3) a token the service does not know: 401, and the token is not shown
run_case d3_bad_access_token unauthorized "$OK_200" "--cancel-posts 0 --token-posts 0" -- \
    CLOUDPARTNER_API_URL="$EMU_API_URL" CLOUDPARTNER_ACCESS_TOKEN=@WRONG_TOKEN

# last, every log against every token the emulator issued during the whole target
ctl check-leaks --store "$TOKEN_STORE" "$OUT"/*.log
echo "all environment cases passed"
