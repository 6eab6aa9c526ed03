"""recover: bringing retained data back under a stack: adopt (import orphans into
storage), migrate (from the old layout), and the rewrite of references into literal
values that both need."""
