# shellcheck shell=bash
# Helpers shared by scripts/test.sh and scripts/demo.sh. Source it; it defines functions and a few
# read-only variables and does nothing else.
#
# Everything here works on a fresh clone with a fresh HOME where only the pyenv Pythons and PyPI exist:
# interpreters are found under the pyenv versions directory (never through the shims), and every
# generated file goes to .work/ (git-ignored and build-ignored), the tools' HOME included (isolate_home).
# Linux and bash >= 4 only (associative arrays, EPOCHREALTIME, flock, GNU tar and coreutils).

# Repository root (= collection root), resolved physically: ansible-test rejects symlinked paths.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
WORK_DIR=$REPO_ROOT/.work
# HOME and TMPDIR of everything the scripts run (isolate_home).
WORK_HOME=$WORK_DIR/home
WORK_TMP=$WORK_DIR/tmp
VENVS_DIR=$WORK_DIR/venvs
REQUIREMENTS_DIR=$REPO_ROOT/scripts/requirements
EMULATOR_SCRIPT=$REPO_ROOT/tests/emulator/cloudpartner_emulator.py
COLLECTION_NAMESPACE=azure_marketplace
COLLECTION_NAME=cloudpartner
readonly REPO_ROOT WORK_DIR WORK_HOME WORK_TMP VENVS_DIR REQUIREMENTS_DIR EMULATOR_SCRIPT COLLECTION_NAMESPACE COLLECTION_NAME

# pip versions ansible-test's venv bootstrap asked for in the cores we pin (2.19: 24.2, 2.20 and 2.21: 25.2).
# write_get_pip_shims also scans the installed ansible_test sources, so a newer core works too;
# this list only makes sure the known ones exist even if that scan ever finds nothing.
readonly KNOWN_GET_PIP_VERSIONS=(24.2 25.2)

log() {
    printf '%s\n' "$*" >&2
}

die() {
    log "ERROR: $*"
    exit 1
}

# Drop the lines this machine's pip.conf makes pip print on every run (extra-index-url points at
# local folders that don't exist). Never fails, so a pipeline's status stays the producer's.
filter_noise() {
    grep --line-buffered -v -E "^WARNING: Location '[^']*' is ignored" || true
}

# Microseconds since the epoch (bash 5's EPOCHREALTIME without the dot), for step durations.
now_us() {
    local t=${EPOCHREALTIME:-}
    if [[ -z $t ]]; then
        printf '%s000000\n' "$(date +%s)"
    else
        printf '%s\n' "${t/[.,]/}"
    fi
}

# Format a microsecond duration as seconds with one decimal.
format_duration() {
    local us=$1
    printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}

# The pyenv versions directory. CI has a fresh HOME, so $HOME/.pyenv may not be it: try PYENV_ROOT,
# `pyenv root`, the directory the pyenv executable lives in, then the real HOME's .pyenv (isolate_home
# saves the real HOME in CLOUDPARTNER_REAL_HOME before it points HOME into .work/).
pyenv_versions_dir() {
    local candidates=() exe dir real_home=${CLOUDPARTNER_REAL_HOME:-${HOME:-}}
    [[ -n ${PYENV_ROOT:-} ]] && candidates+=("$PYENV_ROOT")
    if exe=$(command -v pyenv 2>/dev/null); then
        dir=$(pyenv root 2>/dev/null || true)
        [[ -n $dir ]] && candidates+=("$dir")
        exe=$(readlink -f "$exe")
        candidates+=("$(dirname "$(dirname "$exe")")")
    fi
    [[ -n $real_home ]] && candidates+=("$real_home/.pyenv")
    candidates+=(/root/.pyenv /opt/pyenv /usr/local/pyenv)
    for dir in "${candidates[@]}"; do
        if [[ -d $dir/versions ]]; then
            printf '%s\n' "$dir/versions"
            return 0
        fi
    done
    return 1
}

# Real interpreter for a major.minor version (never a pyenv shim: shims resolve through
# PYENV_VERSION/.python-version and exit 127 for versions that aren't "selected").
# PYTHON_3_11=/path/to/python (dots replaced by underscores) overrides the lookup.
find_python() {
    local version=$1 override_var candidate versions_dir best=''
    override_var=PYTHON_${version//./_}
    if [[ -n ${!override_var:-} ]]; then
        printf '%s\n' "${!override_var}"
        return 0
    fi
    if versions_dir=$(pyenv_versions_dir); then
        # Highest patch release of that minor version; sort -V orders 3.11.10 after 3.11.7.
        local dirs=("$versions_dir/$version".*)
        best=$(printf '%s\n' "${dirs[@]##*/}" | grep -E "^${version//./\\.}\.[0-9]+$" | sort -V | tail -n 1 || true)
        candidate=$versions_dir/$best/bin/python$version
        if [[ -n $best && -x $candidate ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    fi
    # Outside pyenv machines: a system python3.X that is not a shim.
    if candidate=$(command -v "python$version" 2>/dev/null) && [[ $candidate != */shims/* ]]; then
        printf '%s\n' "$candidate"
        return 0
    fi
    return 1
}

# A directory of symlinks python3.X -> real interpreters, to put before the pyenv shims on PATH.
# ansible-test looks interpreters up on PATH when it delegates or when it is not told --python.
make_pybin() {
    local pybin=$WORK_DIR/pybin v py
    mkdir -p "$pybin"
    for v in 3.8 3.9 3.10 3.11 3.12 3.13 3.14; do
        if py=$(find_python "$v"); then
            ln -sfn "$py" "$pybin/python$v"
        fi
    done
    printf '%s\n' "$pybin"
}

# isolate_home: from here on, everything the calling script runs gets HOME=.work/home and TMPDIR=.work/tmp
# (and XDG_*_HOME, pip's cache and Ansible's remote_tmp under that HOME), so that nothing is written outside
# the checkout: ansible-test keeps its venvs, its download cache (the get-pip shims) and its SSH key in ~/.ansible/test,
# Ansible its temporary files in ~/.ansible/tmp, pip its cache in ~/.cache/pip and the modules their token
# cache in ~/.cache/azure_marketplace.cloudpartner. ansible-test hands its children HOME but not TMPDIR, which
# is why HOME matters most.
# What discovery needs from the real HOME is taken before the switch: the pyenv root (exported as PYENV_ROOT)
# and the user's pip configuration (linked, read-only, so that a mirror configured there keeps working, also
# for the pip runs inside ansible-test). The real HOME is kept in CLOUDPARTNER_REAL_HOME, so a script started
# by another one (scripts/gates/*) finds it again; calling this twice is harmless.
isolate_home() {
    local real_home versions source target links i
    if [[ ${HOME:-} != "$WORK_HOME" ]]; then
        real_home=${HOME:-}
        if [[ -z ${PYENV_ROOT:-} ]] && versions=$(pyenv_versions_dir); then
            export PYENV_ROOT=${versions%/versions}
        fi
        mkdir -p -m 0700 "$WORK_HOME"
        # pip reads the user's configuration from $XDG_CONFIG_HOME/pip/pip.conf and ~/.pip/pip.conf.
        links=("${XDG_CONFIG_HOME:-$real_home/.config}/pip/pip.conf" "$WORK_HOME/.config/pip/pip.conf"
            "$real_home/.pip/pip.conf" "$WORK_HOME/.pip/pip.conf")
        for i in 0 2; do
            source=${links[i]} target=${links[i + 1]}
            [[ -n $real_home && -f $source ]] || continue
            if [[ ! -e $target || -L $target ]]; then
                mkdir -p "$(dirname "$target")"
                ln -sfn "$source" "$target"
            fi
        done
        export CLOUDPARTNER_REAL_HOME=$real_home
    fi
    mkdir -p -m 0700 "$WORK_HOME" "$WORK_TMP"
    export HOME=$WORK_HOME TMPDIR=$WORK_TMP
    export XDG_CACHE_HOME=$WORK_HOME/.cache XDG_CONFIG_HOME=$WORK_HOME/.config
    export XDG_DATA_HOME=$WORK_HOME/.local/share XDG_STATE_HOME=$WORK_HOME/.local/state
    export PIP_CACHE_DIR=$WORK_HOME/.cache/pip
    # Ansible expands its default remote_tmp (~/.ansible/tmp) as ~<user>, the passwd home, even on the local
    # connection: name it explicitly. (ansible-test drops this variable; test.sh writes an integration.cfg.)
    export ANSIBLE_REMOTE_TMP=$WORK_HOME/.ansible/tmp
}

# wait_for_lock FILE WHAT: take an exclusive lock on FILE, held until release_lock or until the calling
# (sub)shell exits; LOCK_FD is its descriptor. Without flock (not a Linux box), go on unlocked.
# HELD_LOCK_FDS lists the descriptors, so that a background process (the emulator) doesn't inherit
# them and keep the lock after we exit.
HELD_LOCK_FDS=()
LOCK_FD=''
wait_for_lock() {
    local file=$1 what=$2 fd
    LOCK_FD=''
    command -v flock >/dev/null 2>&1 || return 0
    exec {fd}>"$file"
    HELD_LOCK_FDS+=("$fd")
    LOCK_FD=$fd
    if ! flock -n "$fd"; then
        log "waiting for another run that holds $what ($file)"
        flock "$fd"
    fi
}

# release_lock FD: give a lock from wait_for_lock back early (a no-op for an empty FD).
release_lock() {
    local fd=$1 kept=() held
    [[ -n $fd ]] || return 0
    exec {fd}>&-
    for held in "${HELD_LOCK_FDS[@]}"; do
        [[ $held == "$fd" ]] || kept+=("$held")
    done
    HELD_LOCK_FDS=("${kept[@]}")
}

# requirement_files FILE: FILE and every file it pulls in with -r / -c, recursively (relative to FILE).
requirement_files() {
    local file=$1 line
    printf '%s\n' "$file"
    [[ -f $file ]] || return 0
    while read -r line || [[ -n $line ]]; do
        case $line in
        -r\ * | -c\ *) requirement_files "$(dirname "$file")/${line#* }" ;;
        esac
    done <"$file"
}

# Hash of everything that decides a venv's content: the requirement files it reads (NAME.txt and what it
# includes) and the interpreter's exact version. A matching stamp means the venv can be reused as is.
venv_requirements_hash() {
    local name=$1 python=$2 file files
    mapfile -t files < <(requirement_files "$REQUIREMENTS_DIR/$name.txt")
    {
        "$python" -c 'import sys; print(sys.version)'
        for file in "$REQUIREMENTS_DIR/pip.txt" "${files[@]}"; do
            printf '== %s\n' "${file##*/}"
            cat "$file" 2>/dev/null || true
        done
    } | sha256sum | cut -d' ' -f1
}

# ensure_venv NAME PYTHON_VERSION: create or reuse .work/venvs/NAME from scripts/requirements/NAME.txt.
# RELOCK=1 ignores (empties) NAME.constraints.txt, installs the newest allowed versions and writes the
# resulting `pip freeze` back into it.
ensure_venv() {
    local name=$1 version=$2 python venv=$VENVS_DIR/$1 stamp want constraints lock
    constraints=$REQUIREMENTS_DIR/$name.constraints.txt
    python=$(find_python "$version") || die "no Python $version found (looked under the pyenv versions directory; set PYTHON_${version//./_})"
    [[ -f $REQUIREMENTS_DIR/$name.txt ]] || die "missing $REQUIREMENTS_DIR/$name.txt"

    if [[ ${RELOCK:-0} == 1 ]]; then
        printf '# Generated by RELOCK; the full transitive lock of .work/venvs/%s.\n' "$name" >"$constraints"
    fi
    [[ -f $constraints ]] || : >"$constraints"

    # test.sh, demo.sh and benchmarks/run.sh may run at the same time: one creates, the others wait
    # and then reuse. The lock only covers the check and the creation, not the use of the venv.
    mkdir -p "$VENVS_DIR"
    wait_for_lock "$VENVS_DIR/.$name.lock" "venv $name"
    lock=$LOCK_FD

    want=$(venv_requirements_hash "$name" "$python")
    stamp=$venv/.requirements.sha256
    if [[ -x $venv/bin/python && -f $stamp && $(<"$stamp") == "$want" ]] &&
        "$venv/bin/python" -c 'import ansible, ansible_test' 2>/dev/null; then
        release_lock "$lock"
        log "venv $name: up to date ($("$venv/bin/python" -c 'import ansible; print("ansible-core", ansible.__version__)'), $python)"
        return 0
    fi

    log "venv $name: creating from $python"
    rm -rf "$venv"
    mkdir -p "$VENVS_DIR"
    "$python" -m venv "$venv"
    # Separate steps: the ensurepip pip of the pyenv builds is too old for some of the wheels' metadata.
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$REQUIREMENTS_DIR/pip.txt" 2>&1 | filter_noise
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$REQUIREMENTS_DIR/$name.txt" 2>&1 | filter_noise
    "$venv/bin/python" -m pip check 2>&1 | filter_noise

    if [[ ${RELOCK:-0} == 1 ]]; then
        {
            printf '# Full transitive lock of .work/venvs/%s (generated with RELOCK=1 scripts/test.sh; do not edit).\n' "$name"
            "$venv/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | filter_noise
        } >"$constraints.tmp"
        mv "$constraints.tmp" "$constraints"
        want=$(venv_requirements_hash "$name" "$python")
    fi
    printf '%s\n' "$want" >"$stamp"
    release_lock "$lock"
    log "venv $name: ready ($("$venv/bin/python" -c 'import ansible; print("ansible-core", ansible.__version__)'))"
}

# pip versions the ansible-test of a venv bootstraps into its managed venvs. The version is a
# literal in ansible_test/_internal/python_requirements.py (get_venv_packages: pip='24.2'); scan all
# of ansible_test for `pip='X'` / `'pip': 'X'` so that a moved constant is still found.
get_pip_versions() {
    local python=$1
    "$python" - <<'PY'
import importlib.util
import os
import re

spec = importlib.util.find_spec('ansible_test')
root = list(spec.submodule_search_locations)[0]
pattern = re.compile(r"""(?:\bpip\s*=\s*|['"]pip['"]\s*:\s*)['"](\d+\.\d+(?:\.\d+)?)['"]""")
found = set()
for dirpath, _dirs, files in os.walk(os.path.join(root, '_internal')):
    for name in files:
        if name.endswith('.py'):
            with open(os.path.join(dirpath, name), encoding='utf-8') as handle:
                found.update(pattern.findall(handle.read()))
for version in sorted(found):
    print(version)
PY
}

# ansible-test bootstraps pip in its managed venvs by downloading
# https://ci-files.testing.ansible.com/ansible-test/get-pip-<ver>.py, a host this network can't reach.
# It uses ~/.ansible/test/cache/get_pip_<ver_with_underscores>.py instead when that exists, running it as
# `<venv python> get_pip_X_Y.py --disable-pip-version-check pip==X.Y ... [--no-setuptools] [--no-wheel]`.
# The shim runs pip straight from a pip wheel downloaded here once (what the real get-pip.py does with
# its embedded copy; ~3 s per venv), and falls back to the stdlib's ensurepip + PyPI (~9 s per venv:
# sanity creates ten venvs per Python version, so this matters on a cold run).
# Only ever into the .work HOME (isolate_home): the user's own ~/.ansible/test/cache, which every other
# collection tested from that account shares, is never touched.
write_get_pip_shims() {
    local python=$1 cache=$HOME/.ansible/test/cache version versions
    local wheels=$cache/get_pip_wheels
    [[ $HOME == "$WORK_HOME" ]] || die "write_get_pip_shims: HOME is $HOME, not $WORK_HOME (call isolate_home first)"
    mkdir -p "$cache" "$wheels"
    versions=$({ get_pip_versions "$python" || true; printf '%s\n' "${KNOWN_GET_PIP_VERSIONS[@]}"; } | sort -uV)
    for version in $versions; do
        if ! compgen -G "$wheels/pip-$version-*.whl" >/dev/null; then
            "$python" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: \
                -d "$wheels" "pip==$version" 2>&1 | filter_noise ||
                log "WARNING: could not download the pip $version wheel; the shim will use ensurepip"
        fi
        "$python" - "$cache/get_pip_${version//./_}.py" "$version" "$wheels" <<'PY'
import os
import sys

target, version, wheels = sys.argv[1:]
SHIM = """\
\"\"\"Offline stand-in for get-pip.py {version}, written by scripts/test.sh (scripts/lib/common.sh).\"\"\"
import glob
import os
import subprocess
import sys

WHEELS = {wheels!r}
ARGS = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]

wheel = sorted(glob.glob(os.path.join(WHEELS, 'pip-{version}-*.whl')))
if wheel and subprocess.call([sys.executable, os.path.join(wheel[-1], 'pip'), 'install',
                              '--no-index', '--find-links', WHEELS] + ARGS) == 0:
    sys.exit(0)
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'])
subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + ARGS)
"""
with open('%s.%d.tmp' % (target, os.getpid()), 'w', encoding='utf-8') as handle:
    handle.write(SHIM.format(version=version, wheels=wheels))
os.replace('%s.%d.tmp' % (target, os.getpid()), target)
PY
        log "get-pip shim for pip $version: $cache/get_pip_${version//./_}.py"
    done
}

# build_collection PYTHON_VENV OUTPUT_DIR: build the collection tarball from the repository root
# (galaxy.yml's build_ignore applies) and print its path.
build_collection() {
    local venv=$1 out=$2 tarballs
    rm -rf "$out"
    mkdir -p "$out"
    (cd "$REPO_ROOT" && "$venv/bin/ansible-galaxy" collection build --output-path "$out" --force) >&2
    tarballs=("$out"/"$COLLECTION_NAMESPACE"-"$COLLECTION_NAME"-*.tar.gz)
    [[ ${#tarballs[@]} -eq 1 && -f ${tarballs[0]} ]] || die "expected one tarball in $out"
    printf '%s\n' "${tarballs[0]}"
}

# install_collection VENV TARBALL DIR: install into DIR/ansible_collections/... without Galaxy.
install_collection() {
    local venv=$1 tarball=$2 dest=$3
    rm -rf "$dest"
    mkdir -p "$dest"
    # ANSIBLE_COLLECTIONS_PATH=dest: silences "the path ... is not in the configured collection paths".
    ANSIBLE_COLLECTIONS_PATH=$dest "$venv/bin/ansible-galaxy" collection install --offline --force \
        -p "$dest" "$tarball" >&2
}

# Emulator control. emulator_start VENV STATE_DIR [extra args]: start it in the background (the CLI
# returns once every listener is ready and STATE_DIR/emulator.json exists). A leftover instance of an
# interrupted run in the same state dir is stopped first.
emulator_start() {
    local venv=$1 state=$2
    shift 2
    [[ -f $EMULATOR_SCRIPT ]] || die "emulator not found: $EMULATOR_SCRIPT"
    if [[ -f $state/emulator.json ]]; then
        emulator_stop "$venv" "$state" || true
    fi
    mkdir -p "$state"
    (
        for fd in "${HELD_LOCK_FDS[@]}"; do
            exec {fd}>&-
        done
        exec "$venv/bin/python" "$EMULATOR_SCRIPT" start --state-dir "$state" "$@" >&2
    )
    [[ -f $state/emulator.json ]] || die "the emulator started but wrote no $state/emulator.json"
}

emulator_stop() {
    local venv=$1 state=$2 pid=''
    [[ -f $state/emulator.json ]] || return 0
    if [[ -f $EMULATOR_SCRIPT ]] && "$venv/bin/python" "$EMULATOR_SCRIPT" stop --state-dir "$state" >&2; then
        rm -f "$state/emulator.json"
        return 0
    fi
    # The CLI failed: end the process it recorded (one we started), by its pid only.
    pid=$("$venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("pid", ""))' \
        "$state/emulator.json" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
    fi
    rm -f "$state/emulator.json"
}
