-- pr2:applies-to all
-- 005: version vectors for anti-entropy between the replicas of a shard.
-- A replica's version vector says, per origin replica, the highest origin position it holds
-- contiguously. Its own origin's entry is pr2_writer_head.origin_position; the entries of other
-- origins are the rows below, advanced by anti-entropy in the same transaction as the entries it
-- imports (also when an entry is skipped because its MessageId is already here under another origin).
create table pr2_origin_vector (
    origin_replica  uuid primary key,
    position        bigint not null check (position >= 0),
    updated_at      timestamptz not null default now()
);
