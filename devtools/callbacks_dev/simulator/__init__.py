"""A gateway simulator: realistic SMS, email, WhatsApp and chatbot events, and ``make demo``.

``callbacks_dev.simulator.events`` builds contract §5 envelopes from a seeded
``random.Random`` (pure; the benchmark and the tests reuse it). ``python -m
callbacks_dev.simulator`` plays the upstream gateways against a running stack.
"""
