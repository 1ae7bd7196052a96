"""The engines: each takes a model and a property list and returns verdicts."""
