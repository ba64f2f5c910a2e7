#!/usr/bin/env bash
# Install (once) the npm packages that the output tests use as real
# consumers of asyncunwind's profiles (tests/profile_outputs_test.sh):
#   speedscope       its app's own import code reads collapsed and speedscope
#                    files, and it ships the file format's JSON schema
#   ajv              validates a speedscope file against that schema
#   playwright-core  drives Debian's chromium (headless) to load the app and
#                    the SVG flame graph; it brings no browser of its own.
#                    1.60 is the last that runs on Node 18 (Debian 12's
#                    nodejs); later ones want Node 20
#
# Location: $ASYNCUNWIND_NODE_ROOT, default /var/lib/asyncunwind/node, outside
# the work tree like the sid chroot: every clone and CI run on the machine
# shares it, and Bazel's globs never see it.  Versions are pinned; a stamp
# written last names them, so a warm run is a no-op (~0.01 s).
set -euo pipefail

ROOT="${ASYNCUNWIND_NODE_ROOT:-/var/lib/asyncunwind/node}"
PKGS=(speedscope@1.25.0 ajv@8.20.0 playwright-core@1.60.0)
STAMP="$ROOT/.asyncunwind-node-complete"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "${PKGS[*]}" ]]; then
  echo "node_tools: ${PKGS[*]} already in $ROOT"
  exit 0
fi
command -v npm >/dev/null || { echo "node_tools: npm is missing (apt-get install nodejs npm)" >&2; exit 1; }
mkdir -p "$ROOT"
echo "node_tools: installing ${PKGS[*]} into $ROOT"
npm install --prefix "$ROOT" --no-audit --no-fund --save-exact "${PKGS[@]}"
echo "${PKGS[*]}" >"$STAMP"
