"""The staff desk: queues, units of a scope, dispatch candidates and the ledger."""
