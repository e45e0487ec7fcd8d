"""Developer tools for the callback profiles platform, kept out of the runtime package.

``callbacks_dev.devstack`` starts PostgreSQL, a Kafka-protocol broker and the services on
one machine (``make run``, the test fixtures, the benchmarks); ``callbacks_dev.simulator``
plays the upstream gateways (``make demo``). Nothing under ``callbacks`` or the services
imports this package.
"""
