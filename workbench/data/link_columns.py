"""The columns `psi_link` adds to the tables it writes: the names the steps that read linked tables (vfl_train) and
the simulation's linkage scoring share, without importing the step."""

LINK_PARTY, LINK_PASS = "link_party", "link_pass"
"""Columns every output table adds: the other party of the link, and the pass that linked the record."""
MATCHED_COLUMN = "matched"
"""With keep_unmatched: True on the requester's rows some pass linked, so a model can tell filled-in payload from received."""
LINK_ID = "link_id"
"""With reveal both: joins a requester's linked rows with the provider's, numbered per pair in a random order, so it
says nothing about either table's order."""
RECEIVED_ROWS = "received_rows"
"""Published at a requester that received the provider's columns (reveal payload): {table, columns, rows}, so the
report can say how many rows of another party's data are behind each model trained on that table."""
