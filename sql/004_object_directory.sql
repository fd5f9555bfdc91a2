-- pr2:applies-to control
-- 004: the object directory, on the control shard: which actor ids exist in which shard. Kept by the
-- "object-directory" agent, which follows every shard's journal and writes here (its marks, one per
-- followed shard, sit in this database's pr2_agent_mark beside the rows they produced).
create table pr2_object_directory (
    shard           integer not null,
    actor_id        text not null,
    actor_type      text not null,
    status          smallint not null check (status in (1, 2)),
    first_position  bigint not null,
    updated_at      timestamptz not null default now(),
    primary key (shard, actor_id)
);

-- Queries by type and id prefix: text_pattern_ops lets a btree serve "like 'prefix%'" in any collation.
create index pr2_object_directory_type on pr2_object_directory (actor_type, actor_id text_pattern_ops);
