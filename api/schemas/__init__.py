"""JSON Schemas (2020-12, as OpenAPI 3.1 uses) of request bodies and responses."""
