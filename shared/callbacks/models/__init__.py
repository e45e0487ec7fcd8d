"""Wire models: API bodies and topic records, named as in the contract."""
