-- pr2:applies-to all
-- 014: how far each journal stream provider has delivered this shard's journal, as a version vector.

-- A stream reader starts from here after a silo restart or when its queue moves to another silo, and delivers
-- again what came after (subscribers drop what their stored token includes). Written to the replica the
-- reader reads; a reader that moves to a replica with an older row only delivers more again, never less.
create table pr2_stream_checkpoint (
    provider        text not null,
    origin_replica  uuid not null,
    position        bigint not null check (position >= 0),
    updated_at      timestamptz not null default now(),
    primary key (provider, origin_replica)
);
