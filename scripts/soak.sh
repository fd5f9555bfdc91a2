#!/usr/bin/env bash
# Runs the fault suite (tests/PR2.Tests/FaultSuiteTests.cs) as a soak: the seeded workload and nemesis go on
# for the given number of seconds before healing and checking. Usage: scripts/soak.sh <seconds> [seed]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: scripts/soak.sh <seconds> [seed]}
export PR2_FAULT_SECONDS="$seconds"
if [ -n "${2:-}" ]; then
  export PR2_FAULT_SEED="$2"
fi

dotnet test tests/PR2.Tests -c Release --filter "FullyQualifiedName~FaultSuiteTests" --logger "console;verbosity=detailed" \
  -- RunConfiguration.TestSessionTimeout=$(( (seconds + 900) * 1000 ))
