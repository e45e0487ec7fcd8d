"""The local stack: real PostgreSQL and a real Kafka-protocol broker, started from wheels.

``make run`` and the integration tests use the same launchers, so what the tests
exercise is what a newcomer runs.
"""
