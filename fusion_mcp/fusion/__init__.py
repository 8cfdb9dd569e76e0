"""The fusion run and its stages.

engine (the library's front door) · run (composes the stages) · drafting · review · synthesis
(one module per stage) · weights · timing (the deadline's plan) · accounting (usage, cost, time)
· requests (every prompt sent) · delimit (untrusted drafts) · review_parser · calls (one model
call: cache, provider, cost) · call_cache · events (progress) · result (what a run returns).
"""
