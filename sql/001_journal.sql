-- pr2:applies-to all
-- 001: the journal of one shard replica, its writer head and its identity.
-- Every replica database of every shard (the control shard included) gets this script.

-- Which shard this database is a replica of, and the replica's own id (the "origin" stamped on the
-- entries first written here). Filled once by the migrator; a later start with a topology that names
-- this database for another shard is refused.
create table pr2_replica (
    singleton   boolean primary key default true check (singleton),
    shard       integer not null check (shard >= 0),
    replica_id  uuid not null,
    created_at  timestamptz not null default now()
);

-- The writer head: one row. Every group commit locks it (select ... for update) and advances it in
-- the same transaction as the entries, so positions and the Lamport clock can only move together.
-- epoch fences writers: a writer that opens bumps it, and a writer whose epoch is no longer the
-- current one finds out at its next commit and stops, so two writers can never interleave.
-- origin_position counts the entries first written here (this replica's own origin sequence): with
-- entries imported from other replicas interleaved, local positions and origin positions differ.
create table pr2_writer_head (
    singleton        boolean primary key default true check (singleton),
    epoch            bigint not null default 0,
    position         bigint not null default 0 check (position >= 0),
    clock            bigint not null default 0 check (clock >= 0),
    origin_position  bigint not null default 0 check (origin_position >= 0),
    updated_at       timestamptz not null default now()
);
insert into pr2_writer_head default values;

-- The journal: append-only. position is the local order (contiguous from 1); (origin_replica,
-- origin_position) says where the entry was first written, for anti-entropy between replicas.
create table pr2_journal (
    position           bigint primary key check (position > 0),
    message_id         uuid not null unique,
    lamport_counter    bigint not null check (lamport_counter > 0),
    lamport_shard      integer not null,
    origin_replica     uuid not null,
    origin_position    bigint not null,
    actor_id           text not null,
    actor_type         text generated always as (split_part(actor_id, '/', 1)) stored,
    kind               smallint not null check (kind in (1, 2, 3)),
    actor_version      bigint not null check (actor_version > 0),
    body               jsonb not null check (jsonb_typeof(body) = 'object'),
    content_hash       bytea not null,
    sender             text not null,
    caused_by_counter  bigint,
    caused_by_shard    integer,
    recorded_at        timestamptz not null default now(),
    unique (origin_replica, origin_position)
);

-- An actor's entries in version order: loading an actor and checking its latest version are index scans.
-- Not unique: after a fail-over two primaries may both have given an actor the same version, and
-- anti-entropy must still carry both entries (the fold orders them by Lamport stamp).
create index pr2_journal_actor_version on pr2_journal (actor_id, actor_version);

-- Nothing is updated in place: refuse update, delete and truncate of journal rows outright.
create function pr2_journal_is_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'pr2_journal is append-only: % refused', tg_op
        using errcode = 'restrict_violation';
end;
$$;

create trigger pr2_journal_no_update_or_delete
    before update or delete on pr2_journal
    for each statement execute function pr2_journal_is_append_only();

create trigger pr2_journal_no_truncate
    before truncate on pr2_journal
    for each statement execute function pr2_journal_is_append_only();
