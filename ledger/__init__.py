"""Licentric Ledger: the event-sourced core (domain, event store, tenancy)."""
