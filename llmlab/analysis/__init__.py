"""Analysis: pure functions of recorded runs (DataFrames in the row schema) — nothing here calls
an endpoint or touches the log.

Owns: scorers (``_scoring``, public as :mod:`llmlab.scoring`; a judge scorer is handed the
``Lab`` to call, it does not import it), charts (``_charts``, public as :mod:`llmlab.charts`)
and the self-contained HTML report (``_report``).

May import: ``base`` only.
"""
