"""The Prefect server a command or a Python caller talks to, when none is configured: the managed
local server (`local`, one per PREFECT_HOME, started once in the background) or a temporary one
per command (`temporary`, held by `guard`). Standard library only: no Prefect import here (`launch`,
the server's own process, imports it when run as a program).
"""
