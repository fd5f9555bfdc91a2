-- pr2:applies-to all
-- 003: agent high-water marks and the records view, on every replica database.

-- One row per (agent, followed shard): how far the agent has applied that shard's journal. The row
-- lives in the database where the agent's effects land, and is advanced in the same transaction as
-- those effects, with a compare-and-set on the old value: a crash anywhere loses nothing and applies
-- nothing twice, and a duplicate runner cannot apply a batch again. An agent's rows over several
-- shards form its vector clock.
create table pr2_agent_mark (
    agent       text not null,
    shard       integer not null check (shard >= 0),
    position    bigint not null default 0 check (position >= 0),
    updated_at  timestamptz not null default now(),
    primary key (agent, shard)
);

-- The records view: one row per actor, the fold of its journal entries in Lamport order
-- (maintained by the "records" agent; see RecordState for the fold rules).
create table pr2_record (
    actor_id       text primary key,
    actor_type     text not null,
    status         smallint not null check (status in (0, 1, 2)),  -- 0: entries but no insert yet (see RecordState)
    version        bigint not null check (version > 0),
    state          jsonb,
    first_counter  bigint not null,
    first_shard    integer not null,
    last_counter   bigint not null,
    last_shard     integer not null,
    last_position  bigint not null,
    updated_at     timestamptz not null default now()
);

create index pr2_record_type on pr2_record (actor_type, actor_id);
