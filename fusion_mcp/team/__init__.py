"""A team endpoint: OAuth sign-in, runs owned by their user, per-user budgets, the usage ledger,
metrics, traces and the audit line (docs/team.md). The `team` extra installs what it needs."""
