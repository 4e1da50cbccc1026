"""The read pool: replication lag of the read replicas, and who serves reads.

:mod:`.membership` decides (pure), :mod:`.lag` measures (asyncpg, direct to
the servers), :mod:`.loop` runs both every tick and writes ``status.pgbouncer``,
the read pool's ConfigMap and an Event each time a replica leaves or joins.
"""
