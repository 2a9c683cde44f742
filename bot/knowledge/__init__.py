"""The curated knowledge base: models, loading and cross-file validation."""
