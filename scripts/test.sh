#!/usr/bin/env bash
# Runs the whole test suite. The tests start their own throwaway PostgreSQL servers from the installed
# binaries (initdb, pg_ctl: on PATH or in /usr/lib/postgresql/*/bin), as the postgres user when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# Build every project first: some tests run what is not a test dependency (the pr2 tool, the samples, the packages).
dotnet build PR2.Orleans.sln -c Release -v quiet -nologo
dotnet test PR2.Orleans.sln -c Release --no-build --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log" || status=$?

# One plain closing line for CI: "N passed, N failed" (from the runner's "Total tests" block).
passed=$(sed -nE 's/^ +Passed: +([0-9]+)$/\1/p' "$log" | tail -n 1)
failed=$(sed -nE 's/^ +Failed: +([0-9]+)$/\1/p' "$log" | tail -n 1)
if [ -z "$passed" ] && [ -z "$failed" ]; then
  echo "no test summary found: the test run did not complete" >&2
  exit 1
fi
# Repeat each failed test's name and first lines of its message at the end, where a truncated CI log still shows them.
if [ "${failed:-0}" != "0" ]; then
  echo "failed tests:"
  grep -A 6 -E '^ +Failed PR2\.' "$log" | cut -c1-400 || true
fi
echo "${passed:-0} passed, ${failed:-0} failed"
exit "$status"
