"""The deploy logic, in rooms that import downwards only (tests/test_layers.py):

  report   what a deploy would do or did (plan)
  recover  adopt, migrate: retained data back under a stack
  execute  apply, protection, destroy, the ledger
  gate     check: inventory, replacement rule, findings, inspected change sets
  (here)   what every room uses: workspace, the table of stack states, a stack's
           waits, parameters, fingerprints, progress

AWS is reached only through tooling.aws."""
