#!/usr/bin/env bash
# The project's test command (README: ./scripts/test.sh; CI: .ci/run). Linux, bash >= 4.
#
# Builds three tool venvs, one per tested ansible-core:
#   core219-py311     ansible-core 2.19 / Python 3.11, "minimum versions": msal and requests exactly at the
#                     floors of requirements.txt    -> sanity, units, integration
#   core220-py312     ansible-core 2.20 / Python 3.12            -> sanity, units
#   corelatest-py313  the newest ansible-core (2.21) / Python 3.13, newest msal and requests
#                                                                -> sanity, units, integration; ansible-lint
# builds and installs the collection, copies the checkout into an ansible_collections/ tree, starts the Cloud
# Partner Portal emulator, and runs ansible-test sanity/units/integration per venv, ansible-lint and the other
# gates. Every step runs even when an earlier one failed (unless it needs the failed one); the end is a
# PASS/FAIL table and one line "N passed, M failed". Exit status 0 only if all passed.
#
# Usage: scripts/test.sh [--only STEP[,STEP...]] [--python 3.11|3.12|3.13[,...]] [--fast] [--serial] [--help]
#   steps: venv build doc tree emulator sanity units integration lint changelog docs importer emulator-tests
#   --python  only the venvs of these Pythons (comma-separated)
#   --fast    only the minimum-versions venv (ansible-core 2.19 / Python 3.11)
#   --serial  run the integration tests last, one venv after the other, instead of in the background (side by
#             side, from the start) while the other steps run
#   ansible-lint always runs from corelatest-py313 (ansible-lint needs a newer cryptography than msal 1.31
#   allows), which is built for it when --python/--fast left it out.
#   VERBOSE=1  pass -v to ansible-test;  RELOCK=1  re-resolve and rewrite scripts/requirements/*.constraints.txt
#   of the venvs it builds
# Everything generated goes to .work/: the venvs, dist, collections, tree, emulator, logs, and the HOME and
# TMPDIR of every tool it runs (.work/home, .work/tmp: ansible-test's venvs, cache, get-pip shims and SSH key,
# Ansible's ~/.ansible/tmp and remote_tmp, pip's cache, the modules' token cache). ansible-test passes no TMPDIR
# to what it starts: its injector directories, the pip runs that set up its sanity venvs, AnsiballZ payloads and
# pytest's tmp_path (/tmp/pytest-of-$USER) still use /tmp; everything else stays in the checkout.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly ALL_STEPS=(venv build doc tree emulator sanity units integration lint changelog docs importer emulator-tests)
# venv name -> Python version; the order is the run order, the first selected one is the "primary"
# venv (build, doc, emulator, changelog, docs, emulator-tests use it).
readonly VENV_NAMES=(core219-py311 core220-py312 corelatest-py313)
declare -A VENV_PYTHON=([core219-py311]=3.11 [core220-py312]=3.12 [corelatest-py313]=3.13)
# Integration runs on the oldest and the newest core only (sanity and units run on all).
readonly INTEGRATION_VENVS=(core219-py311 corelatest-py313)
# The venv that has ansible-lint (scripts/requirements/lint.txt).
readonly LINT_VENV_NAME=corelatest-py313
readonly DOC_MODULE=cloudpartner_operation_cancel
readonly DIST_DIR=$WORK_DIR/dist
readonly INSTALL_DIR=$WORK_DIR/collections
readonly TREE_ROOT=$WORK_DIR/tree
readonly TREE=$TREE_ROOT/ansible_collections/$COLLECTION_NAMESPACE/$COLLECTION_NAME
readonly EMULATOR_STATE=$WORK_DIR/emulator
readonly LOG_DIR=$WORK_DIR/logs

usage() {
    sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------------------------------------------
# Step bookkeeping

STEP_LABELS=()
STEP_RESULTS=()
STEP_TIMES=()
STEP_NOTES=()
declare -A STEP_STATUS=()   # label -> PASS|FAIL, for prerequisites
STEP_COUNT=0
STEP_NOTE_FILE=/dev/null
STEP_DURATION_FILE=/dev/null

record_step() {
    local label=$1 result=$2 duration_us=$3 note=${4:-}
    STEP_LABELS+=("$label")
    STEP_RESULTS+=("$result")
    STEP_TIMES+=("$duration_us")
    STEP_NOTES+=("$note")
    STEP_STATUS[$label]=$result
}

# run_step LABEL COMMAND [ARGS...]: run COMMAND in a subshell with errexit, stream its output (noise
# filtered) to the terminal and to .work/logs/NN-LABEL.log, and record PASS/FAIL with the duration.
run_step() {
    local label=$1 log_file start rc note duration
    shift
    STEP_COUNT=$((STEP_COUNT + 1))
    log_file=$LOG_DIR/$(printf '%02d' "$STEP_COUNT")-${label//[^A-Za-z0-9._-]/_}.log
    printf '\n==> [%s] %s\n' "$label" "$(date '+%H:%M:%S')"
    start=$(now_us)
    STEP_NOTE_FILE=$LOG_DIR/.note
    STEP_DURATION_FILE=$LOG_DIR/.duration
    rm -f "$STEP_NOTE_FILE" "$STEP_DURATION_FILE"
    # The step runs as a background job that we wait for: bash runs a trap only once the foreground
    # command has finished, but `wait` returns at once on a signal, so a TERM from CI stops a step
    # that takes minutes right away (cleanup kills it).
    rm -f "$LOG_DIR/.rc"
    (
        {
            set +e
            (set -e; "$@")
            echo "$?" >"$LOG_DIR/.rc"
        } 2>&1 | filter_noise | tee "$log_file"
    ) &
    RUNNING_STEP_PID=$!
    wait "$RUNNING_STEP_PID" || true
    RUNNING_STEP_PID=''
    rc=$(cat "$LOG_DIR/.rc" 2>/dev/null || echo 1)
    note=$(cat "$STEP_NOTE_FILE" 2>/dev/null || true)
    duration=$(cat "$STEP_DURATION_FILE" 2>/dev/null || true)
    [[ $duration =~ ^[0-9]+$ ]] || duration=$(($(now_us) - start))
    if [[ $rc -eq 0 ]]; then
        record_step "$label" PASS "$duration" "$note"
    else
        record_step "$label" FAIL "$duration" "${note:+$note; }exit $rc, log: ${log_file#"$REPO_ROOT"/}"
    fi
    printf '<== [%s] %s\n' "$label" "${STEP_STATUS[$label]}"
}

# note TEXT: from inside a step, a remark for the summary line (e.g. "no tests ran").
note() {
    log "NOTE: $*"
    printf '%s' "$*" >"$STEP_NOTE_FILE"
}

# skip_step LABEL REASON: a step that could not run because a prerequisite failed counts as failed.
skip_step() {
    printf '\n==> [%s] not run: %s\n' "$1" "$2"
    record_step "$1" FAIL 0 "not run: $2"
}

# passed LABEL...: true if every named step ran and passed.
passed() {
    local label
    for label in "$@"; do
        [[ ${STEP_STATUS[$label]:-} == PASS ]] || return 1
    done
}

print_summary() {
    local i n_pass=0 n_fail=0 total=0
    printf '\n%s\nSummary\n' '---------------------------------------------------------------------'
    for i in "${!STEP_LABELS[@]}"; do
        printf '  %-4s  %-30s %7s s  %s\n' "${STEP_RESULTS[$i]}" "${STEP_LABELS[$i]}" \
            "$(format_duration "${STEP_TIMES[$i]}")" "${STEP_NOTES[$i]}"
        total=$((total + STEP_TIMES[i]))
        if [[ ${STEP_RESULTS[$i]} == PASS ]]; then
            n_pass=$((n_pass + 1))
        else
            n_fail=$((n_fail + 1))
        fi
    done
    printf '  total %s s (wall %s s)\n' "$(format_duration "$total")" "$(format_duration $(($(now_us) - RUN_START)))"
    printf '%d passed, %d failed\n' "$n_pass" "$n_fail"
    [[ $n_fail -eq 0 ]]
}

# ---------------------------------------------------------------------------------------------------
# Steps (each runs in a subshell through run_step, so they communicate through files under .work/)

venv_dir() {
    printf '%s\n' "$VENVS_DIR/$1"
}

# with_venv VENV COMMAND...: run with the venv's tools first on PATH, then real interpreters (pybin),
# so nothing resolves through a pyenv shim.
with_venv() {
    local venv=$1
    shift
    PATH="$venv/bin:$PYBIN:$PATH" VIRTUAL_ENV=$venv "$@"
}

step_venv() {
    local name=$1 version=$2
    ensure_venv "$name" "$version"
    write_get_pip_shims "$(venv_dir "$name")/bin/python"
}

# Background steps. A cold venv takes about a minute (downloads, bytecode), an integration run
# several minutes of mostly waiting on the emulator's timers: run those side by side.
# ansible-test integration creates $HOME/.ansible/test/id_rsa on first use, without a lock: two runs
# started together on a fresh HOME (CI) race, and the loser fails with "id_rsa already exists".
# Create it once, with the same command ansible-test uses, before the parallel runs (in the .work HOME).
ensure_ansible_test_ssh_key() {
    local key=$HOME/.ansible/test/id_rsa
    [[ $HOME == "$WORK_HOME" ]] || die "ensure_ansible_test_ssh_key: HOME is $HOME, not $WORK_HOME"
    if [[ ! -f $key || ! -f $key.pub ]]; then
        mkdir -p "$(dirname "$key")"
        rm -f "$key" "$key.pub"
        ssh-keygen -m PEM -q -t rsa -N '' -f "$key"
    fi
}

# start_background LABEL COMMAND...: start the step now; collect_background LABEL (through run_step)
# waits for it, replays its output and reports its own duration and note.
background_base() {
    printf '%s\n' "$LOG_DIR/bg-${1//[^A-Za-z0-9._-]/_}"
}

start_background() {
    local label=$1 base
    shift
    base=$(background_base "$label")
    rm -f "$base.rc" "$base.note"
    {
        set +e
        bg_start=$(now_us)
        (set -e; STEP_NOTE_FILE=$base.note "$@")
        bg_rc=$?
        printf '%s %s\n' "$bg_rc" $(($(now_us) - bg_start)) >"$base.rc"
    } >"$base.log" 2>&1 &
    BACKGROUND_PIDS+=("$!")
    printf '%s\n' "$!" >"$base.pid"
    log "started in the background: $label"
}

collect_background() {
    local label=$1 base pid rc duration
    base=$(background_base "$label")
    pid=$(<"$base.pid")
    log "(ran in the background; output follows)"
    while [[ ! -s $base.rc ]]; do
        if ! kill -0 "$pid" 2>/dev/null && [[ ! -s $base.rc ]]; then
            cat "$base.log"
            log "FAIL: the background step ended without a result"
            return 1
        fi
        sleep 1
    done
    read -r rc duration <"$base.rc"
    cat "$base.log"
    if [[ -f $base.note ]]; then cp "$base.note" "$STEP_NOTE_FILE"; fi
    printf '%s' "$duration" >"$STEP_DURATION_FILE"
    return "$rc"
}

step_venv_collect() {
    local name=$1
    collect_background "venv $name"
    write_get_pip_shims "$(venv_dir "$name")/bin/python"
}

# In parallel mode (the default) every integration venv runs its integration tests in a tree and against an
# emulator of its own, while the other steps use .work/tree: ansible-test writes tests/integration/inventory
# and tests/output/ in the tree, and the targets reset the emulator.
tree_for() {
    if [[ $PARALLEL == 1 ]]; then
        printf '%s\n' "$WORK_DIR/tree-$1/ansible_collections/$COLLECTION_NAMESPACE/$COLLECTION_NAME"
    else
        printf '%s\n' "$TREE"
    fi
}

emulator_state_for() {
    if [[ $PARALLEL == 1 ]]; then
        printf '%s\n' "$WORK_DIR/emulator-$1"
    else
        printf '%s\n' "$EMULATOR_STATE"
    fi
}

# Build from the repository root (so galaxy.yml's build_ignore is what gets tested), make sure nothing
# generated or internal slipped into the tarball, install it and verify the installed checksums.
step_build() {
    local venv=$1 tarball leaked
    tarball=$(build_collection "$venv" "$DIST_DIR")
    log "built $tarball ($(du -h "$tarball" | cut -f1))"
    leaked=$(tar -tzf "$tarball" | sed 's|^\./||' | grep -E \
        '^(\.work|\.git|\.ci|\.ansible|\.hypothesis|\.pytest_cache|\.tox|\.venv|venv|dist|scripts|tests/output)(/|$)|(^|/)(__pycache__|\.hypothesis|\.pytest_cache)(/|$)|\.pyc$|\.tar\.gz$|^tests/integration/(inventory|integration_config\.yml)$|^importer_result\.json$|^changelogs/\.plugin-cache\.yaml$' ||
        true)
    if [[ -n $leaked ]]; then
        log "FAIL: files that must not ship are in the tarball (extend build_ignore in galaxy.yml):"
        log "$leaked"
        return 1
    fi
    install_collection "$venv" "$tarball" "$INSTALL_DIR"
    ANSIBLE_COLLECTIONS_PATH=$INSTALL_DIR "$venv/bin/ansible-galaxy" collection verify --offline \
        "$COLLECTION_NAMESPACE.$COLLECTION_NAME"
}

# ansible-doc must render the installed modules with their OPTIONS, EXAMPLES and RETURN sections.
step_doc() {
    local venv=$1 installed module out section failed=0 missing
    installed=$INSTALL_DIR/ansible_collections/$COLLECTION_NAMESPACE/$COLLECTION_NAME
    if [[ ! -f $installed/plugins/modules/$DOC_MODULE.py ]]; then
        log "FAIL: module $COLLECTION_NAMESPACE.$COLLECTION_NAME.$DOC_MODULE does not exist (yet):" \
            "plugins/modules/$DOC_MODULE.py is not in the built collection"
        return 1
    fi
    for module in "$installed"/plugins/modules/*.py; do
        module=$(basename "$module" .py)
        [[ $module == __init__ ]] && continue
        if ! out=$(ANSIBLE_COLLECTIONS_PATH=$INSTALL_DIR "$venv/bin/ansible-doc" \
            "$COLLECTION_NAMESPACE.$COLLECTION_NAME.$module" 2>&1); then
            log "$out"
            log "FAIL: ansible-doc $module exited non-zero"
            failed=1
            continue
        fi
        missing=()
        for section in OPTIONS EXAMPLES RETURN; do
            grep -q "^$section" <<<"$out" || missing+=("$section")
        done
        if grep -qE '^\[(WARNING|ERROR|DEPRECATION WARNING)\]' <<<"$out"; then
            grep -E '^\[(WARNING|ERROR|DEPRECATION WARNING)\]' <<<"$out" >&2
            missing+=("(no warnings)")
        fi
        if [[ ${#missing[@]} -gt 0 ]]; then
            log "$out"
            log "FAIL: ansible-doc $module: missing ${missing[*]}"
            failed=1
        else
            log "ansible-doc $module: OPTIONS, EXAMPLES and RETURN rendered ($(wc -l <<<"$out") lines)"
        fi
    done
    for role in "$installed"/roles/*/; do
        role=$(basename "$role")
        if out=$(ANSIBLE_COLLECTIONS_PATH=$INSTALL_DIR "$venv/bin/ansible-doc" -t role "$COLLECTION_NAMESPACE.$COLLECTION_NAME.$role" 2>&1) &&
            grep -qi "^options" <<<"$out" && ! grep -qE '^\[(WARNING|ERROR)\]' <<<"$out"; then
            log "ansible-doc -t role $role: entry point and options rendered ($(wc -l <<<"$out") lines)"
        else
            log "$out"
            log "FAIL: ansible-doc -t role $role"
            failed=1
        fi
    done
    return "$failed"
}

# Copy what git would ship (tracked + untracked-not-ignored files, as they are in the working tree)
# into .work/tree/ansible_collections/<ns>/<name>: ansible-test needs that physical layout, and a
# symlink doesn't do (it uses the physical cwd).
step_tree() {
    local count name tree
    rm -rf "$TREE_ROOT" "$WORK_DIR"/tree-*
    mkdir -p "$TREE"
    # Deleted-but-tracked files are still listed by ls-files -c; copy only what exists.
    (cd "$REPO_ROOT" && git ls-files -z -co --exclude-standard |
        while IFS= read -r -d '' path; do
            if [[ -e $path || -L $path ]]; then printf '%s\0' "$path"; fi
        done | tar --null --no-recursion -T - -cf -) | tar -xf - -C "$TREE"
    # The tree sits inside this repository's .git, whose .gitignore hides .work/: ansible-test would list
    # no files at all. A repository of its own makes the tree the content root, with the same ignores.
    git -C "$TREE" init -q
    count=$(git -C "$TREE" ls-files -co --exclude-standard | wc -l)
    log "copied $count files to ${TREE#"$REPO_ROOT"/}"
    write_integration_cfg "$TREE"
    for name in "${INTEGRATION_NAMES[@]}"; do
        tree=$(tree_for "$name")
        [[ $tree == "$TREE" ]] && continue
        rm -rf "$WORK_DIR/tree-$name"
        mkdir -p "$(dirname "$tree")"
        cp -a "$TREE" "$tree"
        log "copied it to ${tree#"$REPO_ROOT"/} for the integration tests of $name"
    done
}

# ansible-test integration runs Ansible with tests/integration/integration.cfg when the collection has one, and
# passes it no environment of ours (no ANSIBLE_REMOTE_TMP). Ansible's default remote_tmp ~/.ansible/tmp is
# expanded as ~<user> even on the local connection, i.e. in the passwd home, not in $HOME: without this the
# tasks' temporary files land in the real ~/.ansible/tmp. The file is written into the tree only (git-excluded
# there, so sanity does not see it); a tracked integration.cfg is left alone.
write_integration_cfg() {
    local tree=$1 cfg=$1/tests/integration/integration.cfg
    if [[ -e $cfg ]]; then
        grep -q '^remote_tmp' "$cfg" ||
            log "WARNING: ${cfg#"$tree"/} has no remote_tmp: tasks will write to the real ~/.ansible/tmp"
        return 0
    fi
    mkdir -p "$(dirname "$cfg")"
    cat >"$cfg" <<EOF
# Written by scripts/test.sh: the tasks' remote temporary files go to the .work HOME.
[defaults]
remote_tmp = $WORK_HOME/.ansible/tmp
EOF
    printf '/tests/integration/integration.cfg\n' >>"$tree/.git/info/exclude"
}

# Start the emulator for the integration tests and hand its coordinates to them through
# tests/integration/integration_config.yml (ansible-test passes that file as extra vars).
step_emulator() {
    local venv=$1 name
    if [[ ${#INTEGRATION_NAMES[@]} -eq 0 ]]; then
        start_emulator_for_tree "$venv" "$EMULATOR_STATE" "$TREE"
    fi
    for name in "${INTEGRATION_NAMES[@]}"; do
        start_emulator_for_tree "$venv" "$(emulator_state_for "$name")" "$(tree_for "$name")"
    done
}

start_emulator_for_tree() {
    local venv=$1 state=$2 tree=$3
    emulator_start "$venv" "$state"
    "$venv/bin/python" - "$state" "$tree/tests/integration/integration_config.yml" <<'PY'
import json
import os
import sys

import yaml

state_dir, target = os.path.abspath(sys.argv[1]), sys.argv[2]
with open(os.path.join(state_dir, 'emulator.json'), encoding='utf-8') as handle:
    emulator = json.load(handle)
emulator['state_dir'] = state_dir
fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the client secret
with os.fdopen(fd, 'w', encoding='utf-8') as handle:
    handle.write('# Written by scripts/test.sh for this run of the emulator.\n')
    yaml.safe_dump({'cloudpartner_emulator': emulator}, handle, default_flow_style=False, sort_keys=True)
print('emulator for %s: api %s, authority %s, pid %s' % (
    os.path.relpath(target), emulator.get('api_url'), emulator.get('authority_host'), emulator.get('pid')))
PY
}

# ansible-test --local with an explicit --python: without it ansible-test probes python3.8...3.13 on PATH
# and trips over pyenv shims (exit 127).
ansible_test() {
    local venv=$1 version=$2 command=$3
    shift 3
    local args=("$command" --local --python "$version" --color no)
    [[ ${VERBOSE:-0} == 1 ]] && args+=(-v)
    (cd "${TEST_TREE:-$TREE}" && with_venv "$venv" ansible-test "${args[@]}" "$@")
}

# Sanity must pass without ignore files. A glob, not find: nothing here can fail quietly and let the gate
# pass (a missing tree fails the step instead).
step_sanity() {
    local path found=()
    [[ -d $TREE/tests ]] || die "no tests/ in ${TREE#"$REPO_ROOT"/}: the tree step did not run or failed"
    for path in "$TREE"/tests/sanity/ignore-*.txt; do
        # Without a match the pattern stays as it is, and does not exist.
        if [[ -e $path || -L $path ]]; then found+=("${path#"$TREE"/}"); fi
    done
    if [[ ${#found[@]} -gt 0 ]]; then
        log "FAIL: sanity must pass without ignore files, found: ${found[*]}"
        return 1
    fi
    ansible_test "$1" "$2" sanity
}

# ansible-test exits 0 when it finds nothing to run; say so in the summary instead of a silent PASS.
ansible_test_noting_skips() {
    local out rc=0
    out=$(mktemp)
    ansible_test "$@" 2>&1 | tee "$out" || rc=$?
    if grep -q 'WARNING: All targets skipped' "$out"; then
        note "no $3 tests ran (all targets skipped)"
    fi
    rm -f "$out"
    return "$rc"
}

step_units() {
    ansible_test_noting_skips "$1" "$2" units
}

# step_integration VENV VERSION NAME: in the venv's own tree (see tree_for).
# --continue-on-error: a failing target does not hide the results of the ones after it (the step still fails).
step_integration() {
    local tree
    tree=$(tree_for "$3")
    TEST_TREE=$tree ansible_test_noting_skips "$1" "$2" integration --continue-on-error
}

# ansible-lint in the copied tree, production profile, no network; ANSIBLE_COLLECTIONS_PATH lets it
# resolve this collection's own modules and roles.
step_lint() {
    local venv=$1
    (cd "$TREE" && ANSIBLE_COLLECTIONS_PATH=$TREE_ROOT with_venv "$venv" \
        ansible-lint --profile production --offline --nocolor)
}

# antsibull-docs: module, role and extra docs (semantic markup, references) as the docs site builds them.
step_docs() {
    local venv=$1
    (cd "$TREE" && with_venv "$venv" antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs . &&
        log "antsibull-docs lint-collection-docs: no findings")
}

# galaxy-importer on the built tarball, in its own venv (scripts/gates/galaxy-importer.sh fails on any WARNING line).
step_importer() {
    local tarball
    tarball=$(find "$DIST_DIR" -maxdepth 1 -name "${COLLECTION_NAMESPACE}-${COLLECTION_NAME}-*.tar.gz" | sort | tail -n 1)
    [[ -n $tarball ]] || die "no built collection in ${DIST_DIR#"$REPO_ROOT"/}"
    "$REPO_ROOT/scripts/gates/galaxy-importer.sh" "$tarball"
}

# The emulator's own tests (it is a component the integration tests rely on).
step_emulator_tests() {
    local venv=$1
    (cd "$TREE" && with_venv "$venv" python -m pytest -q -p no:cacheprovider tests/emulator)
}

step_changelog() {
    local venv=$1
    (cd "$TREE" && with_venv "$venv" antsibull-changelog lint &&
        with_venv "$venv" antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml &&
        log "changelog fragments and changelogs/changelog.yaml are valid")
}

# ---------------------------------------------------------------------------------------------------

# kill_tree PID: end a background step we started and everything it started, by pid (without job
# control the background steps share our process group). The parent goes first so it starts nothing new.
kill_tree() {
    local pid=$1 child children
    children=$(pgrep -P "$pid" 2>/dev/null || true)
    kill "$pid" 2>/dev/null || true
    for child in $children; do
        kill_tree "$child"
    done
}

cleanup() {
    local rc=$? pid
    trap - INT TERM
    for pid in ${RUNNING_STEP_PID:-} "${BACKGROUND_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill_tree "$pid"
        fi
    done
    stop_emulator_if_running
    exit "$rc"
}

stop_emulator_if_running() {
    local state
    [[ -n ${PRIMARY_VENV:-} ]] || return 0
    for state in "$EMULATOR_STATE" "$WORK_DIR"/emulator-*; do
        if [[ -f $state/emulator.json ]]; then
            log "stopping the emulator in ${state#"$REPO_ROOT"/}"
            emulator_stop "$PRIMARY_VENV" "$state" || log "WARNING: could not stop the emulator in $state"
        fi
    done
}

main() {
    local only='' python_filter='' fast=0 step name venv version
    PARALLEL=1
    while [[ $# -gt 0 ]]; do
        case $1 in
        --only) only=${2:?--only needs a comma-separated list of steps}; shift 2 ;;
        --only=*) only=${1#*=}; shift ;;
        --python) python_filter=${2:?--python needs 3.11, 3.12 or 3.13 (or a comma-separated list)}; shift 2 ;;
        --python=*) python_filter=${1#*=}; shift ;;
        --fast) fast=1; shift ;;
        --serial) PARALLEL=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) log "unknown argument: $1"; usage >&2; exit 2 ;;
        esac
    done

    # Which checks were asked for.
    declare -A want=()
    if [[ -n $only ]]; then
        IFS=, read -r -a requested <<<"$only"
        for step in "${requested[@]}"; do
            [[ $step == ansible-lint ]] && step=lint
            if [[ " ${ALL_STEPS[*]} " != *" $step "* ]]; then
                log "unknown step '$step' (steps: ${ALL_STEPS[*]})"
                exit 2
            fi
            want[$step]=1
        done
    else
        for step in "${ALL_STEPS[@]}"; do want[$step]=1; done
    fi
    # Which venvs: --python X.Y[,X.Y...] keeps the venvs of those Pythons, --fast only the first (2.19 / 3.11).
    local selected=() pythons=() python
    if [[ -n $python_filter ]]; then
        IFS=, read -r -a pythons <<<"$python_filter"
        for python in "${pythons[@]}"; do
            if [[ " ${VENV_PYTHON[*]} " != *" $python "* ]]; then
                log "unknown --python '$python' (tested: $(for n in "${VENV_NAMES[@]}"; do printf ' %s' "${VENV_PYTHON[$n]}"; done | cut -c2-))"
                exit 2
            fi
        done
    fi
    for name in "${VENV_NAMES[@]}"; do
        [[ -n $python_filter && ",$python_filter," != *",${VENV_PYTHON[$name]},"* ]] && continue
        [[ $fast == 1 && $name != "${VENV_NAMES[0]}" ]] && continue
        selected+=("$name")
    done
    if [[ ${#selected[@]} -eq 0 ]]; then
        log "no venv left: --fast keeps only Python ${VENV_PYTHON[${VENV_NAMES[0]}]} (ansible-core 2.19)"
        exit 2
    fi
    # Only the ansible-test steps run per venv; the rest needs just the primary one.
    local per_venv=0
    for step in venv sanity units integration; do
        if [[ -n ${want[$step]:-} ]]; then per_venv=1; fi
    done
    [[ $per_venv == 1 ]] || selected=("${selected[0]}")
    INTEGRATION_NAMES=()
    if [[ -n ${want[integration]:-} ]]; then
        for name in "${selected[@]}"; do
            if [[ " ${INTEGRATION_VENVS[*]} " == *" $name "* ]]; then INTEGRATION_NAMES+=("$name"); fi
        done
        if [[ ${#INTEGRATION_NAMES[@]} -eq 0 ]]; then
            log "integration runs on ${INTEGRATION_VENVS[*]} only, and none of them is selected"
            # Asked for by name: nothing it asked for can run. Part of a full run: the rest can.
            [[ ,$only, != *,integration,* ]] || exit 2
            unset 'want[integration]'
        fi
    fi

    # Prerequisites come along automatically.
    if [[ -n ${want[doc]:-} || -n ${want[importer]:-} ]]; then want[build]=1; fi
    if [[ -n ${want[integration]:-} ]]; then want[emulator]=1; fi
    for step in sanity units integration lint changelog emulator docs emulator-tests; do
        if [[ -n ${want[$step]:-} ]]; then want[tree]=1; fi
    done

    PRIMARY_NAME=${selected[0]}
    PRIMARY_VENV=$(venv_dir "$PRIMARY_NAME")
    local primary_label="venv $PRIMARY_NAME"
    # The venvs to build: the primary one, every selected one that a wanted step uses, and the one with
    # ansible-lint when lint is wanted.
    local build_names=("$PRIMARY_NAME") needed=()
    if [[ -n ${want[venv]:-}${want[sanity]:-}${want[units]:-} ]]; then needed+=("${selected[@]}"); fi
    needed+=("${INTEGRATION_NAMES[@]}")
    if [[ -n ${want[lint]:-} ]]; then needed+=("$LINT_VENV_NAME"); fi
    for name in "${VENV_NAMES[@]}"; do
        if [[ " ${needed[*]} " == *" $name "* && " ${build_names[*]} " != *" $name "* ]]; then build_names+=("$name"); fi
    done
    # HOME, TMPDIR and the caches of everything below: .work/home, .work/tmp.
    isolate_home
    mkdir -p "$LOG_DIR"
    # Two runs in one checkout would share .work/tree, the emulator state and the logs.
    wait_for_lock "$WORK_DIR/.test.lock" "scripts/test.sh"
    rm -f "$LOG_DIR"/*.log "$LOG_DIR"/bg-*
    export NO_COLOR=1 ANSIBLE_NOCOLOR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    PYBIN=$(make_pybin)

    log "repo: $REPO_ROOT; HOME: $HOME; venvs: ${build_names[*]}; integration: ${INTEGRATION_NAMES[*]:-none};" \
        "steps: $(for s in "${ALL_STEPS[@]}"; do [[ -n ${want[$s]:-} ]] && printf '%s ' "$s"; done)"

    # Venvs: the primary one in the foreground, the others side by side.
    for name in "${build_names[@]:1}"; do
        start_background "venv $name" ensure_venv "$name" "${VENV_PYTHON[$name]}"
    done
    run_step "$primary_label" step_venv "$PRIMARY_NAME" "${VENV_PYTHON[$PRIMARY_NAME]}"
    for name in "${build_names[@]:1}"; do
        run_step "venv $name" step_venv_collect "$name"
    done

    if [[ -n ${want[build]:-} ]]; then
        if passed "$primary_label"; then
            run_step build step_build "$PRIMARY_VENV"
        else
            skip_step build "$primary_label failed"
        fi
    fi
    if [[ -n ${want[doc]:-} ]]; then
        if passed build; then
            run_step doc step_doc "$PRIMARY_VENV"
        else
            skip_step doc "build failed"
        fi
    fi
    if [[ -n ${want[tree]:-} ]]; then
        run_step tree step_tree
    fi
    if [[ -n ${want[emulator]:-} ]]; then
        if passed tree "$primary_label"; then
            run_step emulator step_emulator "$PRIMARY_VENV"
        else
            skip_step emulator "tree or $primary_label failed"
        fi
    fi

    # Integration (mostly waiting on the emulator's timers) starts first, in the background, every venv in a
    # tree and against an emulator of its own, so that the CPU-bound steps below (sanity, units, lint, ...)
    # run meanwhile; its results are collected at the end. --serial runs it last, one venv after the other.
    local background=()
    if [[ ${#INTEGRATION_NAMES[@]} -gt 0 ]]; then
        ensure_ansible_test_ssh_key
    fi
    for name in "${INTEGRATION_NAMES[@]}"; do
        if ! passed "venv $name" tree; then
            skip_step "integration $name" "venv $name or tree failed"
        elif ! passed emulator; then
            skip_step "integration $name" "emulator failed"
        elif [[ $PARALLEL == 1 ]]; then
            start_background "integration $name" step_integration "$(venv_dir "$name")" "${VENV_PYTHON[$name]}" "$name"
            background+=("$name")
        fi
    done

    # sanity and units (CPU-bound) one venv after the other.
    for name in "${selected[@]}"; do
        venv=$(venv_dir "$name")
        version=${VENV_PYTHON[$name]}
        for step in sanity units; do
            [[ -n ${want[$step]:-} ]] || continue
            if passed "venv $name" tree; then
                run_step "$step $name" "step_$step" "$venv" "$version"
            else
                skip_step "$step $name" "venv $name or tree failed"
            fi
        done
    done

    if [[ -n ${want[lint]:-} ]]; then
        if passed tree "venv $LINT_VENV_NAME"; then
            run_step ansible-lint step_lint "$(venv_dir "$LINT_VENV_NAME")"
        else
            skip_step ansible-lint "tree or venv $LINT_VENV_NAME failed"
        fi
    fi
    if [[ -n ${want[changelog]:-} ]]; then
        if passed tree "$primary_label"; then
            run_step changelog step_changelog "$PRIMARY_VENV"
        else
            skip_step changelog "tree or $primary_label failed"
        fi
    fi

    if [[ -n ${want[docs]:-} ]]; then
        if passed tree "$primary_label"; then
            run_step docs step_docs "$PRIMARY_VENV"
        else
            skip_step docs "tree or $primary_label failed"
        fi
    fi
    if [[ -n ${want[emulator-tests]:-} ]]; then
        if passed tree "$primary_label"; then
            run_step emulator-tests step_emulator_tests "$PRIMARY_VENV"
        else
            skip_step emulator-tests "tree or $primary_label failed"
        fi
    fi
    if [[ -n ${want[importer]:-} ]]; then
        if passed build; then
            run_step galaxy-importer step_importer
        else
            skip_step galaxy-importer "build failed"
        fi
    fi

    for name in "${INTEGRATION_NAMES[@]}"; do
        if [[ $PARALLEL == 0 && -z ${STEP_STATUS["integration $name"]:-} ]]; then
            run_step "integration $name" step_integration "$(venv_dir "$name")" "${VENV_PYTHON[$name]}" "$name"
        fi
    done
    for name in "${background[@]}"; do
        run_step "integration $name" collect_background "integration $name"
    done

    # Stop the emulators now rather than in the EXIT trap, so "N passed, M failed" stays the last line.
    stop_emulator_if_running
    print_summary
}

RUN_START=$(now_us)
PRIMARY_NAME=''
PRIMARY_VENV=''
PARALLEL=1
INTEGRATION_NAMES=()
BACKGROUND_PIDS=()
RUNNING_STEP_PID=''
PYBIN=''
main "$@"
