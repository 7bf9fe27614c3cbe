#!/usr/bin/env bash
# test-bundle.sh [ARGUMENTS...]: runs the tests as `swift test --skip-build [ARGUMENTS...]` would,
# without SwiftPM (which spends ~5-10 s loading the package graph before every run): the debug test
# bundle with swift-testing (every suite is swift-testing's; there is no XCTest pass to make), the
# arguments as given (--filter, --skip, --no-parallel, --list-tests, ...). As `swift test` does, a
# run that no test matched is not a failure (swift-testing exits 69 then). Needs
# `swift build --build-tests` first (the Makefile's test targets run it or say so).
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle="$root/.build/debug/cycloramaPackageTests.xctest"
[[ -x "$bundle" ]] || { echo "no test bundle at $bundle: run swift build --build-tests first" >&2; exit 1; }
"$bundle" --testing-library swift-testing "$@"
status=$?
if ((status == 69)); then
    echo "no test matched: nothing was run"
    exit 0
fi
exit "$status"
