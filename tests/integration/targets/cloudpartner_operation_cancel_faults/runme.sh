#!/usr/bin/env bash
# Failure paths of cloudpartner_operation_cancel (issue "Reliability, security and speed") against the emulator's
# transient faults, and (issue 7, "Trust") one case per review finding that crosses a process or the network:
# proxy, redirect, discovery, TLS, lost answer, trickle, huge body, 401 storm, refused state, access_token
# whitespace, the token cache on disk. One small playbook per case (playbooks/), run with ansible-playbook -vvv
# and the credentials only in the process environment, as AWX injects them. Per case:
#   (a) the playbook asserts the module result (register + assert);
#   (b) faults_ctl.py asserts what the emulator saw: request counts and order, the auth of every request, which
#       listener, token requests (the issue-7 cases assert on counts, order and log entries only, never seconds);
#   (c) ../cloudpartner_operation_cancel_env/emu_ctl.py check-leaks: neither the client secret nor any token the
#       emulator issued appears in the saved stdout+stderr (nor does any "Traceback");
#   (d) for the token cache cases, this script checks the file system (modes, symlink targets, no ./~).
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
    # every directory that may hold a token cache, and the token store
    rm -rf "$TOKEN_STORE" "$OUT"/token-cache-* "$OUT"/cache-* "$OUT"/passwd-* "$OUT"/ansible-home-*
    # leave the settings as every other target expects them
    fctl settings "$DEFAULT_SETTINGS" >/dev/null 2>&1 || true
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
DEFAULT_SETTINGS='{"token_lifetime": 3599, "token_error": null, "token_redirect": null, "discovery_redirect": null, "reject_tokens": 0, "token_max_uses": 0}'
fctl settings "$DEFAULT_SETTINGS"

CRED_VARS=(
    CLOUDPARTNER_API_URL CLOUDPARTNER_API_VERSION CLOUDPARTNER_ACCESS_TOKEN
    CLOUDPARTNER_TENANT_ID CLOUDPARTNER_CLIENT_ID CLOUDPARTNER_CLIENT_SECRET CLOUDPARTNER_AUTHORITY_HOST
    AZURE_TENANT AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_SECRET AZURE_CLIENT_SECRET AZURE_AUTHORITY_HOST
    CLOUDPARTNER_CA_PATH CLOUDPARTNER_VALIDATE_CERTS CLOUDPARTNER_TIMEOUT CLOUDPARTNER_RETRIES
    CLOUDPARTNER_TOKEN_CACHE CLOUDPARTNER_TOKEN_CACHE_DIR CLOUDPARTNER_TOKEN_CACHE_PATH
    # proxies: every case starts without any, and only the proxy cases set them
    HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy NO_PROXY no_proxy
)
CACHE_SUBDIR=azure_marketplace.cloudpartner

offer() {
    ctl offer "$1" "$2"
}

# the mode of a path as stat prints it (e.g. 1777, 700), without following a symlink
mode_of() {
    stat -c %a "$1"
}

# expect_equal CASE WHAT ACTUAL EXPECTED
expect_equal() {
    if [[ "$3" != "$4" ]]; then
        echo "case $1: $2 is '$3', expected '$4'" >&2
        return 1
    fi
}

# selected NAME: whether FAULT_CASES (a debugging aid) lets the case run; for cases with steps around run_case
selected() {
    if [[ -n "${FAULT_CASES:-}" && ",${FAULT_CASES}," != *",$1,"* ]]; then
        echo "case $1: skipped (FAULT_CASES=${FAULT_CASES})"
        return 1
    fi
}

# Whether this process may make a private mount namespace (root, or a kernel that lets it): the HOME-unset cases
# need one to replace /etc/passwd for ansible-playbook alone.
CAN_ISOLATE=""
if unshare -m true >/dev/null 2>&1; then
    CAN_ISOLATE=1
fi

TIMES=()

# run_case NAME PLAYBOOK [options] [-- PLAYBOOK ARGS]     (PLAYBOOK: a file in playbooks/, or an absolute path)
#   --access-token S     CLOUDPARTNER_ACCESS_TOKEN = a token issued just before the run, valid S seconds, and no
#                        client credentials; otherwise CLOUDPARTNER_TENANT_ID / _CLIENT_ID / _CLIENT_SECRET
#   --token-max-uses N   with --access-token: the token expires after N accepted API requests
#   --token-shape SHAPE  with --access-token: "newline" appends a newline, "space" puts a space in the middle;
#                        afterwards no 20-character piece of the token may appear in the output
#   --no-token-cache     CLOUDPARTNER_TOKEN_CACHE=false
#   --forks              the 5-host inventory, -f 5, results saved to NAME.result.json
#   --api-url URL        CLOUDPARTNER_API_URL (default: the emulator's https api_url)
#   --env VAR=VALUE      one more (non-secret) environment variable; repeatable
#   --cache-dir DIR      CLOUDPARTNER_TOKEN_CACHE_DIR=DIR instead of a fresh token-cache-NAME
#   --no-cache-dir       no CLOUDPARTNER_TOKEN_CACHE_DIR at all, and neither HOME nor XDG_CACHE_HOME (the
#                        default cache home then comes from the passwd entry); needs --passwd
#   --passwd MODE        run in a private mount namespace whose /etc/passwd has no entry for this uid
#                        (MODE "none") or gives it the home directory DIR (MODE "home=DIR")
#   --cwd DIR            the working directory of ansible-playbook
#   --guard SECONDS      kill ansible-playbook after that long (default 600): a safety net, not an assertion
# Every case gets a fresh cache home (token-cache-NAME) unless told otherwise, shared by the forks of the forks case.
# FAULT_CASES=name,name (environment) runs only those cases: a debugging aid, never set by ansible-test.
run_case() {
    local name=$1 playbook=$2
    shift 2
    selected "$name" || return 0
    local access_token="" token_max_uses=0 token_shape="" no_cache="" forks="" api_url=$EMU_API_URL cache_dir="$OUT/token-cache-$name"
    local no_cache_dir="" passwd="" cwd=$HERE guard=600 extra_env=() playbook_args=() user_name
    user_name=$(id -un)
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --access-token) access_token=$2; shift 2 ;;
            --token-max-uses) token_max_uses=$2; shift 2 ;;
            --token-shape) token_shape=$2; shift 2 ;;
            --no-token-cache) no_cache=1; shift ;;
            --forks) forks=1; shift ;;
            --api-url) api_url=$2; shift 2 ;;
            --env) extra_env+=("$2"); shift 2 ;;
            --cache-dir) cache_dir=$2; shift 2 ;;
            --no-cache-dir) no_cache_dir=1; shift ;;
            --passwd) passwd=$2; shift 2 ;;
            --cwd) cwd=$2; shift 2 ;;
            --guard) guard=$2; shift 2 ;;
            --) shift; playbook_args=("$@"); break ;;
            *) echo "run_case: unknown option $1" >&2; return 2 ;;
        esac
    done
    local log="$OUT/$name.log" result="$OUT/$name.result.json" inventory=$INVENTORY
    local check_args=() isolate=()
    if [[ -n "$forks" ]]; then
        inventory=$FORKS_INVENTORY
        playbook_args+=(-f 5 -e "result_file=$result")
        check_args+=(--result "$result")
    fi
    if [[ -n "$passwd" ]]; then
        # /etc/passwd without this uid's line, or with its home replaced, bind-mounted for this run only; and an
        # nsswitch.conf that reads passwd from that file alone (nss-systemd would make up an entry for root)
        local fake_passwd="$OUT/passwd-$name" fake_nsswitch="$OUT/passwd-$name-nsswitch.conf" uid
        uid=$(id -u)
        if [[ "$passwd" == none ]]; then
            awk -F: -v uid="$uid" '$3 != uid' /etc/passwd >"$fake_passwd"
        else
            awk -F: -v OFS=: -v uid="$uid" -v home="${passwd#home=}" '$3 == uid {$6 = home} {print}' /etc/passwd >"$fake_passwd"
        fi
        { grep -v '^passwd:' /etc/nsswitch.conf 2>/dev/null || true; echo 'passwd: files'; } >"$fake_nsswitch"
        # shellcheck disable=SC2016
        isolate=(unshare -m -- sh -c 'mount --bind "$0" /etc/passwd && mount --bind "$1" /etc/nsswitch.conf && shift &&
            echo "passwd entry of uid $(id -u): $(getent passwd "$(id -u)" || echo none)" && exec "$@"' "$fake_passwd" "$fake_nsswitch")
    fi
    [[ -n "$no_cache_dir" ]] || mkdir -p "$cache_dir"
    local given_token=""
    if [[ -n "$access_token" ]]; then
        set +x
        given_token=$(fctl token "$access_token" --max-uses "$token_max_uses")
        set -x
    fi
    local mark tokens_before started rc=0
    mark=$(ctl mark)
    tokens_before=$(fctl token-requests)
    started=$SECONDS
    (
        set +x
        unset "${CRED_VARS[@]}"
        export CLOUDPARTNER_API_URL="$api_url"
        if [[ -n "$access_token" ]]; then
            case "$token_shape" in
                newline) CLOUDPARTNER_ACCESS_TOKEN="$given_token"$'\n' ;;
                space) CLOUDPARTNER_ACCESS_TOKEN="${given_token:0:40} ${given_token:40}" ;;
                *) CLOUDPARTNER_ACCESS_TOKEN=$given_token ;;
            esac
            export CLOUDPARTNER_ACCESS_TOKEN
        else
            export CLOUDPARTNER_AUTHORITY_HOST="$EMU_AUTHORITY_HOST" CLOUDPARTNER_TENANT_ID="$EMU_TENANT_ID"
            export CLOUDPARTNER_CLIENT_ID="$EMU_CLIENT_ID" CLOUDPARTNER_CLIENT_SECRET="$SECRET"
        fi
        unset SECRET given_token
        if [[ -n "$no_cache_dir" ]]; then
            # no HOME, no XDG_CACHE_HOME; ansible itself gets absolute directories, so that whatever appears in
            # the working directory comes from the collection
            unset HOME XDG_CACHE_HOME
            export USER="$user_name" LOGNAME="$user_name" ANSIBLE_HOME="$OUT/ansible-home-$name" ANSIBLE_LOCAL_TEMP="$OUT/ansible-home-$name/tmp"
            export ANSIBLE_REMOTE_TEMP="$OUT/ansible-home-$name/remote-tmp"
        else
            export CLOUDPARTNER_TOKEN_CACHE_DIR="$cache_dir"
        fi
        [[ -z "$no_cache" ]] || export CLOUDPARTNER_TOKEN_CACHE=false
        local assignment
        for assignment in "${extra_env[@]}"; do
            export "${assignment?}"
        done
        if [[ -n "$access_token" ]]; then
            echo "case ${name}: credentials in the environment: CLOUDPARTNER_ACCESS_TOKEN (valid ${access_token} s, max uses ${token_max_uses}${token_shape:+, $token_shape})"
        else
            echo "case ${name}: credentials in the environment: CLOUDPARTNER_TENANT_ID CLOUDPARTNER_CLIENT_ID CLOUDPARTNER_CLIENT_SECRET"
        fi
        local cache_note=$cache_dir
        [[ -z "$no_cache_dir" ]] || cache_note="the default (no CLOUDPARTNER_TOKEN_CACHE_DIR, HOME, XDG_CACHE_HOME)"
        echo "case ${name}: api_url ${api_url}; other variables: ${extra_env[*]:-none}; cache home: ${cache_note}; cwd ${cwd}"
        # fewer ssh-style steps per task on the local connection: the cases stay short
        export ANSIBLE_PIPELINING=True
        cd "$cwd"
        [[ "$playbook" == /* ]] || playbook="$HERE/playbooks/$playbook"
        exec "${isolate[@]}" timeout "$guard" ansible-playbook -vvv -i "$inventory" "$playbook" \
            -e "publisher_id=${EMU_PUBLISHER_ID} ca_path=${EMU_CA_PATH}" "${playbook_args[@]}"
    ) >"$log" 2>&1 || rc=$?
    TIMES+=("$name $((SECONDS - started))s")

    # (c) first, so that a failing case never prints a secret
    ctl check-leaks --store "$TOKEN_STORE" "$log"
    if [[ -n "$token_shape" ]]; then
        set +x
        FRAGMENT_SECRET=$given_token fctl check-fragments "$log"
        set -x
    fi
    if [[ $rc -eq 124 ]]; then
        echo "case ${name}: ansible-playbook was still running after ${guard} s and was killed" >&2
        return 1
    fi
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
    fctl check "$name" --since "$mark" --tokens-before "$tokens_before" "${check_args[@]}"
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

# --- the access token expiring during a long wait (counts, not seconds: a token expires after N uses) -----------
# The first token is used up after 5 API requests (list, operation, POST, 2 polls): the 3rd poll gets a 401, the
# module requests one fresh token and polls on; the operation ends on its 4th read after the cancel.
fctl settings '{"token_max_uses": 5}'
offer flt-expiry '{"state": "running", "cancel": {"status": 202, "location": "relative", "end_after_reads": 4}}'
run_case token_expiry_refresh token_expiry_refresh.yml --no-token-cache
fctl settings '{"token_max_uses": 0}'

# A given access_token used up after 4 requests (list, operation, POST, 1 poll): a clear failure, never renewed.
offer flt-expiry-given '{"state": "running", "cancel": {"status": 202, "location": "relative", "duration": 600}}'
run_case token_expiry_given token_expiry_given.yml --access-token 3600 --token-max-uses 4

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

# ================================================================================================================
# Issue 7 ("Trust"): one case per review finding that crosses a process or the network.
# ================================================================================================================

# --- M1: a plain-http loopback api_url never goes through a proxy --------------------------------------------------
PROXIES=(--env "HTTP_PROXY=$EMU_PROXY_URL" --env "http_proxy=$EMU_PROXY_URL" --env "ALL_PROXY=$EMU_PROXY_URL" --env "all_proxy=$EMU_PROXY_URL")
offer flt-proxy-token '{"state": "running", "cancel": {"status": 200}}'
run_case proxy_loopback_token cancel_one.yml --access-token 3600 --api-url "$EMU_API_URL_HTTP" "${PROXIES[@]}" -- -e offer_id=flt-proxy-token
# with client credentials: the authority (https://127.0.0.1) is in NO_PROXY, the api_url (http://localhost) is not
EMU_API_URL_HTTP_LOCALHOST=${EMU_API_URL_HTTP/127.0.0.1/localhost}
offer flt-proxy '{"state": "running", "cancel": {"status": 200}}'
run_case proxy_loopback cancel_one.yml --api-url "$EMU_API_URL_HTTP_LOCALHOST" "${PROXIES[@]}" \
    --env "NO_PROXY=127.0.0.1" --env "no_proxy=127.0.0.1" -- -e offer_id=flt-proxy

# --- L1: a redirect from the authority is never followed ------------------------------------------------------------
offer flt-redirect '{"state": "running", "cancel": {"status": 200}}'
fctl settings '{"token_redirect": {"status": 307, "to": "foreign"}}'
run_case redirect_token_foreign redirect.yml -- -e offer_id=flt-redirect -e redirect_status=307
fctl settings '{"token_redirect": {"status": 307, "to": "api_http"}}'
run_case redirect_token_http redirect.yml -- -e offer_id=flt-redirect -e redirect_status=307
fctl settings '{"token_redirect": null, "discovery_redirect": {"status": 308, "to": "foreign"}}'
run_case redirect_discovery redirect.yml -- -e offer_id=flt-redirect -e redirect_status=308
fctl settings '{"discovery_redirect": null}'

# --- maintainer 1.2: OpenID discovery is retried; TLS errors are not --------------------------------------------------
offer flt-discovery '{"state": "running", "cancel": {"status": 200}, "faults": [{"on": "discovery", "status": 503, "retry_after": 1}]}'
run_case discovery_503_once cancel_one.yml -- -e offer_id=flt-discovery
fctl delete-offer flt-discovery

OTHER_CA="$OUT/other-ca.pem"
fctl ca "$OTHER_CA"
offer flt-tls '{"state": "running", "cancel": {"status": 200}}'
run_case tls_wrong_ca tls_wrong_ca.yml -- -e offer_id=flt-tls -e "ca_path=$OTHER_CA"

# --- maintainer 1.3 / contract lost-answer row: a cancel applied whose answer was lost is not repeated ----------------
offer flt-lost-reset '{"state": "running", "cancel": {"status": 202, "duration": 600}, "faults": [{"on": "cancel", "apply": true, "reset": true}]}'
offer flt-lost-502 '{"state": "running", "cancel": {"status": 202, "duration": 600}, "faults": [{"on": "cancel", "apply": true, "status": 502}]}'
offer flt-lost-timeout '{"state": "running", "cancel": {"status": 202, "duration": 600}, "faults": [{"on": "cancel", "delay": 6}]}'
offer flt-lost-wait '{"state": "running", "cancel": {"status": 202, "end_after_reads": 2}, "faults": [{"on": "cancel", "apply": true, "reset": true}]}'
run_case lost_answer lost_answer.yml

# --- L9: a trickling server cannot stretch timeout; bodies are capped -------------------------------------------------
offer flt-trickle-list '{"state": "running", "cancel": {"status": 200}, "faults": [{"on": "list", "trickle_bytes": 40, "trickle_interval": 0.5, "times": 3}]}'
run_case trickle_list trickle_list.yml
# timeout and retries through CLOUDPARTNER_TIMEOUT / CLOUDPARTNER_RETRIES this time
offer flt-trickle-token '{"state": "running", "cancel": {"status": 200}, "faults": [{"on": "token", "trickle_bytes": 40, "trickle_interval": 0.5}]}'
run_case trickle_token trickle_token.yml --env CLOUDPARTNER_TIMEOUT=2 --env CLOUDPARTNER_RETRIES=0
fctl delete-offer flt-trickle-token

offer flt-huge-list "{\"state\": \"running\", \"cancel\": {\"status\": 200}, \"faults\": [{\"on\": \"list\", \"huge_bytes\": $((20 * 1024 * 1024)), \"times\": 3}]}"
run_case huge_list huge_list.yml

# --- I9: a 401 storm gets at most one fresh token per task -------------------------------------------------------------
offer flt-storm '{"state": "running", "cancel": {"status": 202, "end_after_reads": 3}}'
fctl settings '{"reject_tokens": 1}'
run_case storm_401 storm_401.yml -- -e offer_id=flt-storm -e storm_must_fail=true
offer flt-storm-alt '{"state": "running", "cancel": {"status": 202, "end_after_reads": 6}}'
fctl settings '{"reject_tokens": 2}'
run_case storm_401_alternate storm_401.yml -- -e offer_id=flt-storm-alt -e storm_must_fail=false
fctl settings '{"reject_tokens": 0}'

# --- maintainer 1.5: a refused cancellation state fails; an under-way one is not a failure ----------------------------
offer flt-refused '{"state": "running", "cancellation_request_state": "cannotCancel", "cancel": {"status": 202}}'
offer flt-underway '{"state": "running", "cancellation_request_state": "cancelling", "cancel": {"status": 202, "end_after_reads": 4}}'
run_case refused_state refused_state.yml

# --- L3: access_token whitespace ----------------------------------------------------------------------------------------
offer flt-token-nl '{"state": "running", "cancel": {"status": 200}}'
run_case access_token_newline cancel_one.yml --access-token 3600 --token-shape newline -- -e offer_id=flt-token-nl
offer flt-token-space '{"state": "running", "cancel": {"status": 200}}'
run_case access_token_space access_token_space.yml --access-token 3600 --token-shape space

# --- 1.1 / L5 / L6 / L10: the token cache on disk -------------------------------------------------------------------------
STICKY="$OUT/cache-sticky"
if selected cache_sticky; then
    offer flt-cache '{"state": "running", "cancel": {"status": 200}}'
    mkdir -p "$STICKY"
    chmod 1777 "$STICKY"
    run_case cache_sticky cancel_one.yml --cache-dir "$STICKY" -- -e offer_id=flt-cache
    expect_equal cache_sticky "the mode of the sticky cache home" "$(mode_of "$STICKY")" 1777
    expect_equal cache_sticky "the mode of the private directory" "$(mode_of "$STICKY/$CACHE_SUBDIR")" 700
    expect_equal cache_sticky "the mode of tokens.json" "$(mode_of "$STICKY/$CACHE_SUBDIR/tokens.json")" 600
    [[ ! -L "$STICKY/$CACHE_SUBDIR" ]] || { echo "case cache_sticky: the private directory is a symlink" >&2; exit 1; }
fi

LINKED_HOME="$OUT/cache-symlink-home" LINK_TARGET="$OUT/cache-symlink-target"
if selected cache_symlink; then
    offer flt-cache '{"state": "running", "cancel": {"status": 200}}'
    mkdir -p "$LINKED_HOME" "$LINK_TARGET"
    chmod 755 "$LINK_TARGET"
    ln -s "$LINK_TARGET" "$LINKED_HOME/$CACHE_SUBDIR"
    run_case cache_symlink cancel_one.yml --cache-dir "$LINKED_HOME" -- -e offer_id=flt-cache -e cache_warnings=1
    expect_equal cache_symlink "the mode of the symlink's target" "$(mode_of "$LINK_TARGET")" 755
    expect_equal cache_symlink "the files in the symlink's target" "$(ls -A "$LINK_TARGET")" ""
    [[ -L "$LINKED_HOME/$CACHE_SUBDIR" ]] || { echo "case cache_symlink: the symlink was replaced" >&2; exit 1; }
fi

FIFO_HOME="$OUT/cache-fifo-home"
if selected cache_fifo; then
    offer flt-cache '{"state": "running", "cancel": {"status": 200}}'
    mkdir -p "$FIFO_HOME"
    mkdir -m 700 "$FIFO_HOME/$CACHE_SUBDIR"
    mkfifo -m 600 "$FIFO_HOME/$CACHE_SUBDIR/tokens.json"
    run_case cache_fifo cancel_one.yml --cache-dir "$FIFO_HOME" --guard 60 -- -e offer_id=flt-cache -e cache_warnings=any
fi

# The module runs in the playbook's directory: the playbook is copied into the scratch working directory, so that
# a relative cache path ("./~/.cache/...", the old behaviour) would show up there.
NO_HOME_CWD="$OUT/cwd-no-home" PASSWD_HOME="$OUT/passwd-home"
if [[ -z "$CAN_ISOLATE" ]]; then
    echo "cases cache_no_home, cache_passwd_home: SKIPPED (they need a private mount namespace: run as root)" >&2
else
    if selected cache_no_home; then
        offer flt-cache '{"state": "running", "cancel": {"status": 200}}'
        mkdir -p "$NO_HOME_CWD"
        cp "$HERE/playbooks/cancel_one.yml" "$NO_HOME_CWD/"
        run_case cache_no_home "$NO_HOME_CWD/cancel_one.yml" --no-cache-dir --passwd none --cwd "$NO_HOME_CWD" -- -e offer_id=flt-cache
        expect_equal cache_no_home "the working directory's content" "$(ls -A "$NO_HOME_CWD")" cancel_one.yml
        [[ ! -e "$HERE/playbooks/~" ]] || { echo "case cache_no_home: a ~ directory appeared in playbooks/" >&2; exit 1; }
    fi
    if selected cache_passwd_home; then
        offer flt-cache '{"state": "running", "cancel": {"status": 200}}'
        mkdir -p "$NO_HOME_CWD" "$PASSWD_HOME"
        cp "$HERE/playbooks/cancel_one.yml" "$NO_HOME_CWD/"
        run_case cache_passwd_home "$NO_HOME_CWD/cancel_one.yml" --no-cache-dir --passwd "home=$PASSWD_HOME" --cwd "$NO_HOME_CWD" -- -e offer_id=flt-cache
        expect_equal cache_passwd_home "the working directory's content" "$(ls -A "$NO_HOME_CWD")" cancel_one.yml
        expect_equal cache_passwd_home "the mode of the private directory" "$(mode_of "$PASSWD_HOME/.cache/$CACHE_SUBDIR")" 700
        expect_equal cache_passwd_home "the mode of tokens.json" "$(mode_of "$PASSWD_HOME/.cache/$CACHE_SUBDIR/tokens.json")" 600
    fi
fi

NOVALIDATE_HOME="$OUT/cache-novalidate"
if selected cache_novalidate; then
    offer flt-cache '{"state": "running", "cancel": {"status": 200}}'
    run_case cache_novalidate cancel_one.yml --cache-dir "$NOVALIDATE_HOME" --env CLOUDPARTNER_VALIDATE_CERTS=false -- -e offer_id=flt-cache -e ca_path=
    [[ ! -e "$NOVALIDATE_HOME/$CACHE_SUBDIR/tokens.json" ]] || { echo "case cache_novalidate: a token was cached" >&2; exit 1; }
fi

# last, every log against every token the emulator issued during the whole target; the emulator's own log too
# (the redirect cases sent the client secret to its foreign and api_http listeners: it must not be written down)
EMULATOR_LOG=()
if [[ -n "${EMU_STATE_DIR:-}" && -f "$EMU_STATE_DIR/emulator.log" ]]; then
    EMULATOR_LOG=("$EMU_STATE_DIR/emulator.log")
fi
ctl check-leaks --store "$TOKEN_STORE" "$OUT"/*.log "${EMULATOR_LOG[@]}"
set +x
echo "case durations: ${TIMES[*]}"
echo "all fault cases passed in $((SECONDS - START)) s"
