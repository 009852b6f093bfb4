#!/bin/sh
# Container entrypoint: bring the store's schema up to date, then become `dispatch "$@"`.
#
# Every container runs the migrations at start; PostgreSQL upgrades take an advisory
# lock, so N workers and `serve` starting together upgrade once and the others wait.
# While the store is not reachable yet it retries for DISPATCH_WAIT_SECONDS (60).
# DISPATCH_MIGRATE=0 skips the step (for one-off commands against a current schema).
set -eu

if [ "${DISPATCH_MIGRATE:-1}" != "0" ]; then
    wait_seconds="${DISPATCH_WAIT_SECONDS:-60}"
    deadline=$(( $(date +%s) + wait_seconds ))
    until output=$(DISPATCH_LOG_LEVEL=warning dispatch db upgrade 2>&1); do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "dispatch-entrypoint: the store could not be upgraded within ${wait_seconds} s; the last attempt said:" >&2
            printf '%s\n' "$output" | tail -n 3 >&2
            exit 1
        fi
        echo "dispatch-entrypoint: store not ready yet; retrying in 2 s" >&2
        sleep 2
    done
    echo "dispatch-entrypoint: $output"
fi

exec dispatch "$@"
