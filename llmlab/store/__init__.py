"""The run log and response cache: one schema, two backends, rows in and DataFrames out.

Owns: the schema as ordered, named migrations (``_schema``), every query and the writer thread
(``_base``), SQLite (``_sqlite``, the default) and PostgreSQL (``_postgres``, a team's shared log),
which backend a ``db`` value names (``_open``), bulk reads as Arrow batches (``_columnar``), and
``runs()``/``export()`` filters with the Parquet export (``_export``).

May import: ``base`` only. It knows rows (``base._record.Record``), not calls, prompts or models.
"""
