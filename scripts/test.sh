#!/usr/bin/env bash
# The README's test command: sets up .venv on a fresh machine (CPU torch wheel, package + test extras),
# lints, then runs the tests. With CI=true the slow end-to-end tests are skipped (a fast subset of the
# end-to-end path still runs); pass pytest arguments through, e.g. `bash scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 -e ".[test,diversity]" \
  2> >(grep -v "^WARNING: Location" >&2)
# headless Chromium renders the HTML report in a test (skipped when it cannot be installed)
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq chromium >/dev/null) 2>&1 | tail -2 || true
fi
.venv/bin/ruff check src tests benchmarks
args=(-q)
if [ "${CI:-}" = "true" ] && [ "$#" -eq 0 ]; then
  args+=(-m "not slow")
fi
exec .venv/bin/python -m pytest "${args[@]}" "$@"
