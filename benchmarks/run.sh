#!/usr/bin/env bash
# Benchmarks of azure_marketplace.cloudpartner against the Cloud Partner Portal emulator (benchmarks/README.md).
#
# Prepares everything itself: the project's core219-py311 venv (scripts/lib/common.sh), a small venv with
# matplotlib, the collection built and installed into a temporary collections path, and an emulator of
# its own. Then runs the measurements (benchmarks/bench.py) and writes benchmarks/results/latest.md,
# benchmarks/results/latest.png and benchmarks/results/raw/latest.json.
#
# Usage: benchmarks/run.sh [--reps N] [--quick] [--only m1,m2,m3,m4,profile] [--no-quiet-gate] [--help]
#   --reps N         repetitions per scenario (default 5; measurement 3 uses fewer where its target is not, see the table)
#   --quick          smoke run: 1 repetition, short waits, small N (1 to 2.5 minutes)
#   --only           run a subset of the measurements
#   --no-quiet-gate  do not wait (3 min at most in all) for other processes to calm down before each run
#   KEEP_WORK=1  keep the temporary directory (.work/benchmarks/run.*) for inspection
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=../scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/common.sh"

readonly BENCH_DIR=$REPO_ROOT/benchmarks
readonly BENCH_WORK=$WORK_DIR/benchmarks
readonly ANSIBLE_VENV_NAME=core219-py311
readonly PLOT_VENV=$BENCH_WORK/venv-py311

usage() {
    sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"
}

# The plotting venv: Python 3.11 from pyenv (never a shim) + benchmarks/requirements.txt, rebuilt when
# that file or the interpreter changes.
ensure_plot_venv() {
    local python want stamp=$PLOT_VENV/.requirements.sha256
    python=$(find_python 3.11) || die "no Python 3.11 found (set PYTHON_3_11)"
    want=$({ "$python" -c 'import sys; print(sys.version)'; cat "$BENCH_DIR/requirements.txt"; } | sha256sum | cut -d' ' -f1)
    if [[ -x $PLOT_VENV/bin/python && -f $stamp && $(<"$stamp") == "$want" ]]; then
        log "plot venv: up to date ($PLOT_VENV)"
        return 0
    fi
    log "plot venv: creating $PLOT_VENV"
    rm -rf "$PLOT_VENV"
    "$python" -m venv "$PLOT_VENV"
    "$PLOT_VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQUIREMENTS_DIR/pip.txt" 2>&1 | filter_noise
    "$PLOT_VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$BENCH_DIR/requirements.txt" 2>&1 | filter_noise
    printf '%s\n' "$want" >"$stamp"
}

TMP=''
ANSIBLE_VENV=''

cleanup() {
    local rc=$?
    if [[ -n $TMP && -f $TMP/emulator/emulator.json ]]; then
        emulator_stop "$ANSIBLE_VENV" "$TMP/emulator" || log "WARNING: could not stop the emulator of $TMP"
    fi
    if [[ -n $TMP && ${KEEP_WORK:-0} != 1 ]]; then
        rm -rf "$TMP"
    elif [[ -n $TMP ]]; then
        log "kept $TMP"
    fi
    exit "$rc"
}

main() {
    local started=$EPOCHREALTIME bench_args=() tarball
    # HOME, TMPDIR and Ansible's temporary files inside .work/, like the test and demo scripts
    isolate_home
    while [[ $# -gt 0 ]]; do
        case $1 in
        --reps) bench_args+=(--reps "${2:?--reps needs a number}"); shift 2 ;;
        --reps=*) bench_args+=(--reps "${1#*=}"); shift ;;
        --quick) bench_args+=(--quick); shift ;;
        --only) bench_args+=(--only "${2:?--only needs a list}"); shift 2 ;;
        --only=*) bench_args+=(--only "${1#*=}"); shift ;;
        --no-quiet-gate) bench_args+=(--no-quiet-gate); shift ;;
        -h | --help) usage; exit 0 ;;
        *) log "unknown argument: $1"; usage >&2; exit 2 ;;
        esac
    done
    export NO_COLOR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

    ensure_venv "$ANSIBLE_VENV_NAME" 3.11
    ANSIBLE_VENV=$VENVS_DIR/$ANSIBLE_VENV_NAME
    ensure_plot_venv

    mkdir -p "$BENCH_WORK"
    TMP=$(mktemp -d "$BENCH_WORK/run.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    tarball=$(build_collection "$ANSIBLE_VENV" "$TMP/dist")
    install_collection "$ANSIBLE_VENV" "$tarball" "$TMP/collections"
    log "installed $(basename "$tarball") into $TMP/collections"
    emulator_start "$ANSIBLE_VENV" "$TMP/emulator"

    "$PLOT_VENV/bin/python" "$BENCH_DIR/bench.py" \
        --ansible-venv "$ANSIBLE_VENV" \
        --collections-path "$TMP/collections" \
        --emulator-state "$TMP/emulator" \
        --work-dir "$TMP/work" \
        --results-dir "$BENCH_DIR/results" \
        --started "${started/,/.}" \
        "${bench_args[@]}"
    log "total $(format_duration $(($(now_us) - ${started/[.,]/}))) s"
}

main "$@"
