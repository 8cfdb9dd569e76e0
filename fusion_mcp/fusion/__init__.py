"""The fusion run and its stages.

engine (the library's front door) · run (composes the stages) · drafting · review · synthesis
(one module per stage) · weights · timing (the deadline's plan) · accounting (usage, cost, time)
· requests (every prompt sent) · delimit (untrusted drafts) · review_parser · calls (one model
call: cache, provider, cost) · completion_cache (call keys, completions in the store's cache) · paces
(the pace book: what it learns; the store keeps it) · events (progress) · result (what a run returns)
· test_provider (a stand-in model that answers each stage in its shape: offline tests).
"""
