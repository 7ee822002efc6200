"""Front end: Jupyter — the ``%%llm``/``%llm`` magics and the comparison widget. Parse, call the
engine, display; nothing here measures, prices or stores anything.

Owns: the magics and their settings (``_magics``, public as :mod:`llmlab.magics`), the pure
option-line parser (``_magic_options``), the live comparison board shared by the magic and the
widget (``_board``), and the widget (``_widgets``, public as :mod:`llmlab.widgets`).

May import: the engine, routing, analysis and ``base``; never the CLI (the two front ends are
independent, checked by an import-linter contract).
"""
