"""Each appointment's Jitsi room name (`appointment_{id}` lower-cased) is stored in
appointments.room_key, under a unique index: two ids that differ only in letter case can no
longer both be stored (their calls would share one room; the second `initiate` failed).

Ids stored before that already collide keep one owner each: the one whose call holds the room,
else the earliest stored (then the smallest id). The others keep a NULL room_key: `initiate`
refuses them (409 room_conflict), and so does their next upsert until the clinic renames one.
"""

from collections import defaultdict

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    class Appointment(peewee.Model):
        id = peewee.CharField(max_length=128, primary_key=True)
        room_key = peewee.CharField(max_length=160, null=True)

        class Meta:
            database = db
            table_name = "appointments"

    migrator.migrate(
        migrator.add_column(
            "appointments", "room_key", peewee.CharField(max_length=160, null=True)
        ),
    )
    # Every id without a case twin: one statement (the subquery is computed once).
    db.execute_sql(
        "UPDATE appointments SET room_key = 'appointment_' || lower(id) "
        "WHERE lower(id) IN (SELECT lower(id) FROM appointments GROUP BY lower(id) "
        "HAVING count(*) = 1)"
    )
    # The case twins, rare: choose each room's owner here.
    twins = db.execute_sql(
        "SELECT a.id, a.created_at, "
        "EXISTS (SELECT 1 FROM video_calls c WHERE c.appointment_id = a.id) "
        "FROM appointments a WHERE a.room_key IS NULL"
    ).fetchall()
    rooms: dict[str, list[tuple[bool, int, str]]] = defaultdict(list)
    for appointment_id, created_at, has_call in twins:
        rooms[f"appointment_{appointment_id}".lower()].append(
            (not has_call, created_at, appointment_id)
        )
    for room, candidates in rooms.items():
        owner = min(candidates)[2]
        Appointment.update(room_key=room).where(Appointment.id == owner).execute()
    migrator.migrate(migrator.add_index("appointments", ("room_key",), True))
