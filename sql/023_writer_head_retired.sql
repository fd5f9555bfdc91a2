-- pr2:applies-to all
-- 023: a shard's replicas retired for good (the first step of removing a shard).

-- Set once, with the epoch moved on (which fences the writer open there): no writer opens on a retired replica again, and
-- no writer's fence takes it. Anti-entropy still copies entries between retired replicas, so they end up equal.
alter table pr2_writer_head add column retired_at timestamptz;
