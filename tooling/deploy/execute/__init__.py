"""execute: changing stacks through change sets that passed the gate: apply (waves,
the settle step), the storage stack's protection, destroy, and the ledger of what a
delete or a failed deploy left behind."""
