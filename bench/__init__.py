"""``make bench`` (contract §9): figures measured on this machine in one run.

Each area has a module with ``async def run(ctx: Context) -> dict[str, float]``
(``bench.dispatcher`` here; ``bench.api`` and ``bench.reporter`` follow the same
shape). ``python -m bench`` starts the shared broker, runs every module present and
ends with one ``name: value`` line per figure.
"""
