-- pr2:applies-to all
-- 008: one Lamport stamp per message on every replica.

-- A message can be committed twice under one MessageId: on a primary that became unreachable before
-- anti-entropy copied it, and again by the caller's retry on the new primary, each copy with its own
-- stamp. Replicas agree on the lower stamp: a replica whose own copy has the higher one records the lower
-- here (its journal stays as written), every read of its journal uses it, and its records agent refolds
-- the actor.
create table pr2_restamp (
    message_id      uuid primary key,
    lamport_counter bigint not null,
    lamport_shard   integer not null,
    refolded        boolean not null default false,
    recorded_at     timestamptz not null default now()
);
