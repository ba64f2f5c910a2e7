#!/usr/bin/env bash
# `bazel run //bench:agent_overhead -- [options]`: runs bench/agent_overhead.py
# (what the agent costs a program, with and without it, per interpreter) with
# the host's python3, from the runfiles, on the agent of //agent:files.
set -euo pipefail
cd "${RUNFILES_DIR:-$0.runfiles}/asyncunwind" 2>/dev/null || true
exec /usr/bin/env python3 bench/agent_overhead.py --agent-dir agent "$@"
