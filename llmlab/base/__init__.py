"""The vocabulary every layer shares: one rule per concept, written once.

Owns: the exception tree (``_errors``), what to do next in the words of the front end in use
(``_advice``), input rules and one-line messages (``_validate``), valid Unicode at the boundaries
(``_text``), JSON however deep it nests (``_json``), secret redaction (``_redact``), owner-only files
(``_files``), warnings at the user's line (``_warnings``), endpoint/key/log settings and the trust
rule for project files (``_config``), the row schema and prompt identity (``_record``), the one cost
rule (``_cost``), price sheets (``_pricing``), offline token counts (``_tokens``), the display
sanitiser and escaped tables (``_display``), throttled redraws (``_throttle``), the version.

May import: nothing of llmlab outside ``base`` (the bottom layer; checked by import-linter).
"""
