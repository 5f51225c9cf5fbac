"""Alembic migrations of the hub's store (run on start, or by `hub db upgrade`).

Add a migration with a new file in versions/ and move :data:`HEAD` to it
(a test checks that HEAD is Alembic's head).
"""

#: the newest revision in versions/
HEAD = "0010"
