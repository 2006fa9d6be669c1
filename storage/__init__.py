"""SQL is the source of truth: jobs and their states, batches, the cost ledger, alerts."""
