"""What protects a customer's endpoint: the slot an attempt takes, and what may refuse it.

A record's whole path through the dispatcher, one line a module and its one job:

- ``dispatcher.worker``: consumes every source, retry and redeliver topic; a task per
  record; commits offsets once a record's work is handed off;
- ``dispatcher.fetch_pauses``: pauses fetching while too much is in flight, and a retry
  partition until its head is due;
- ``dispatcher.progress``: records finish out of order; the commit point of each partition;
- ``dispatcher.jobs``: a Kafka record as a ``Job`` (a retry record's headers read back);
- ``dispatcher.redeliver``: a redelivery request as the ``Job`` of its original event;
- ``dispatcher.deliver``: one callback: parse, look up, skip or cancel, attempt, conclude;
- ``dispatcher.profiles``: the profile cache, followed from the compacted profiles topic;
- ``dispatcher.rendering``: a callback's delivery id, variables, skip reason and host key;
- ``dispatcher.ordering``: per-message ordering (``latest``, ``fifo``) and its state topic;
- ``dispatcher.batch``: callbacks of a batching profile gathered into one request;
- ``dispatcher.oauth``: an OAuth2 profile's token, cached per client;
- ``endpoints.attempt``: an attempt's hold on its host's slot, from queueing to the answer;
- ``endpoints.guard``: grants a slot or holds the callback back (host cap, fair queue,
  in-flight shares, breakers);
- ``endpoints.fair_queue``: a host's waiters, round-robin between its profiles;
- ``endpoints.breaker``: a circuit breaker (host scope or endpoint scope);
- ``endpoints.aimd``: a host's adaptive concurrency limit;
- ``endpoints.parking``: how much a throttled host may queue, and when a parked callback
  comes back (its retry topic and due time);
- ``endpoints.limit_gauge``: the per-host limit gauge, read at scrape time;
- ``callbacks.request.build_request``: the HTTP request, rendered and signed;
- ``callbacks.sender`` and ``callbacks.http1``: the socket, and the answer read back.

And back: ``callbacks.retry.decide`` says retry or final; ``dispatcher.deliver`` concludes
the attempt (delivered, retrying, deferred, failed); ``dispatcher.records`` hands its
records to the broker (outcome, serialised by ``dispatcher.outcome_record``; retry or
parked record; dead letter) through ``dispatcher.batching``; their acks let the worker
commit the source offset.
"""
