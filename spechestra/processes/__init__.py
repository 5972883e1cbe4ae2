"""Running child processes so that nothing they start outlives them: timeouts that hold, process
groups stopped whole, leftovers found and killed (`reaper`), workflow steps in a fresh interpreter.

Standard library only, and no Prefect: the core's spec builds and the server management use it.
"""
