#!/usr/bin/env bash
# Run galaxy-importer (what Galaxy and Automation Hub run on import) on a built collection tarball.
#
# Usage: scripts/gates/galaxy-importer.sh TARBALL
#
# galaxy-importer exits 0 even when ansible-lint or ansible-doc report problems: it only logs them as
# WARNING lines. So this gate fails on a non-zero exit AND on any WARNING/ERROR line in its output.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

tarball=${1:?usage: $0 TARBALL}
# HOME, TMPDIR and pip's cache in .work/ (a no-op when scripts/test.sh started us).
isolate_home
tarball=$(cd "$(dirname "$tarball")" && pwd -P)/$(basename "$tarball")
venv=$VENVS_DIR/galaxy-importer
requirements=$REQUIREMENTS_DIR/galaxy-importer.txt
stamp=$venv/.requirements.sha256
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)

if [[ ! -x $venv/bin/python || $(cat "$stamp" 2>/dev/null) != "$wanted" ]]; then
    rm -rf "$venv"
    "$(find_python 3.11)" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" 2>&1 | filter_noise
    printf '%s\n' "$wanted" >"$stamp"
fi

output_dir=$WORK_DIR/galaxy-importer
rm -rf "$output_dir"
mkdir -p "$output_dir"
log_file=$output_dir/output.txt
set +e
# Run from its own directory: it writes importer_result.json into the working directory.
(cd "$output_dir" && GALAXY_IMPORTER_CONFIG=$REPO_ROOT/scripts/gates/galaxy-importer.cfg PATH=$venv/bin:$PATH \
    "$venv/bin/python" -m galaxy_importer.main "$tarball") 2>&1 | filter_noise >"$log_file"
rc=${PIPESTATUS[0]}
set -e
findings=$(grep -E '^(WARNING|ERROR)|(WARNING|ERROR):' "$log_file" || true)
if [[ $rc -ne 0 || -n $findings ]]; then
    cat "$log_file"
    log "galaxy-importer: exit $rc, $(printf '%s' "$findings" | grep -c . || true) WARNING/ERROR lines (full output: ${log_file#"$REPO_ROOT"/})"
    exit 1
fi
tail -n 1 "$log_file"
echo "galaxy-importer: 0 WARNING lines"
