"""The plain-code core: models, graphs, project layout and planning, prompts, building one spec,
running one step. It never imports Prefect (a test checks), so all of it can be tested, reused
and reasoned about without a server; the orchestration layer wraps it in tasks and flows.
"""
