"""The engine: every front end calls :class:`~llmlab.engine._lab.Lab`, which records every attempt.

Data path: ``Lab`` (``_lab``) turns arguments into jobs (``_jobs``, options checked once in
``_options``) → the runner (``_runner``: fan-out, response cache, retries, fallback chains, rate
limits with ``_resilience`` and ``_headers``) → one call (``_call``: the openai SDK, stream
timing, usage, cost) → a ``Record`` → the store → a :class:`~llmlab.engine._results.Result`
(``.df``, ``.summary()``, ``.plot``). ``_loop`` runs the async engine from sync code; ``_progress``
shows a sweep's progress.

May import: ``routing`` (a policy's live decision), ``analysis`` (charts for ``Result.plot``),
``store``, ``local`` (the embedded endpoint when none is configured) and ``base``; never a front
end.
"""
