"""`fusion-mcp eval`: run a dataset through ensembles and strategies, and report accuracy, cost, latency.

datasets (items and loaders) → runner (engine runs, bounded and budgeted) → strategies (answers per
strategy from one run) → scoring (extract and compare) → report (tables, JSON, plot).
"""
