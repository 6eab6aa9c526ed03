"""report: what a deploy would do or did, for people and for CI: the plan."""
