"""The variables of per-user budgets, importable without the rest (the CLI's help names them)."""

BUDGET_ENV = "FUSION_MCP_USER_BUDGET_USD"
BUDGETS_FILE_ENV = "FUSION_MCP_USER_BUDGETS"
