-- pr2:applies-to all
-- 006: what rules write: views, the outbox of messages to other actors, and parked entries.

-- Documents kept by rules ("view" actions): key -> JSON per named view, in the shard whose journal the rule
-- followed. Written in the same transaction as the rule's mark, so each change happens once.
create table pr2_view (
    view        text not null,
    key         text not null,
    doc         jsonb not null,
    rule        text not null,
    position    bigint not null,      -- the journal entry that last changed it
    updated_at  timestamptz not null default now(),
    primary key (view, key)
);

-- Messages a rule sends ("send" actions), written with the rule's mark; the relay delivers them to their
-- actors. Every replica runs every rule over its own journal and keeps its own outbox (and views, parked
-- entries). The MessageId is derived from (rule generation, source entry's MessageId, action), the same on
-- every replica, so a replay (after a crash) and the copies of other replicas carry the same ids and the
-- receivers keep one. (Until 2026-12 ids came from local positions, which differ between replicas.)
create table pr2_outbox (
    message_id      uuid primary key,
    rule            text not null,
    source_position bigint not null,
    action_index    integer not null,
    target_shard    integer not null,
    target_actor    text not null,
    kind            smallint not null check (kind in (1, 2, 3)),
    body            jsonb not null,
    caused_counter  bigint not null,
    caused_shard    integer not null,
    created_at      timestamptz not null default now(),
    delivered_at    timestamptz,
    failure         text                 -- a refusal from the receiver: not retried
);
create index pr2_outbox_pending on pr2_outbox (created_at) where delivered_at is null and failure is null;

-- Entries on which a rule's condition or action failed, with the reason. The rule goes on or halts as its
-- policy says; a parked entry can be retried (after fixing the rule) from the CLI.
create table pr2_dead_letter (
    rule        text not null,
    shard       integer not null,
    position    bigint not null,
    reason      text not null,
    parked_at   timestamptz not null default now(),
    retry       boolean not null default false,   -- asked to run again; the rule agent does it with its next batch
    primary key (rule, shard, position)
);
