"""gate: what must hold before anything changes. The inventory of named resources,
the replacement rule, the findings and their fixes, the inspected change set, and
check, which gathers the facts and asks them."""
