"""The deploy logic: stack states, change sets, the inventory of named resources,
check, protection, apply, adopt, destroy and the ledger. AWS is reached only
through tooling.aws."""
