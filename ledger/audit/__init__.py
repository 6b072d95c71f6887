"""The auditor's tools: verify every tenant's hash chain, sign its head, export it."""
