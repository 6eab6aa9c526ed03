#!/usr/bin/env python3
"""Deploy the rendered stacks of one environment, safely and in order.

    python deploy.py plan    --env dev          waves, and per stack what its change set would do
    python deploy.py check   --env dev          what would fail or lose data, before anything changes
    python deploy.py apply   --env dev [--only KEY ...] [--allow-orphans] [--allow-unknown]
    python deploy.py status  --env dev [--wait]
    python deploy.py drift   --env dev [--revert]   drift of every stack; storage's protections put back
    python deploy.py adopt   --env dev          take orphaned buckets/table back into storage
    python deploy.py destroy --env dev [--include-storage]
    add --local to any of them to target the embedded local AWS (ministack)

Uses the standard AWS environment (profile, region, AWS_ENDPOINT_URL). Renders
first when the render is missing or older than its sources. Exit status: 0 done,
1 a deploy failed, 2 bad input (nothing changed), 3 a blocking finding (nothing
changed), 4 busy (with --no-wait), 130/143 interrupted. The commands are in tooling/cli.py, the work in tooling/deploy/."""
import sys

from tooling.cli import main

if __name__ == "__main__":
    sys.exit(main())
