"""Commands: the one write path of the API and the workers (STYLE.md "One write path").

Each command loads aggregates in the caller's tenant, runs a pure domain method, and
saves the new events with their inline read models in one transaction, retrying from
fresh state when another command won the race on the same stream.
"""
