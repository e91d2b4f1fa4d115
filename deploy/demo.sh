#!/usr/bin/env bash
# The demo is `testbed demo` (see the README); this wrapper stays for old habits.
exec cargo run --release -p switchboard-testbed -- demo "$@"
