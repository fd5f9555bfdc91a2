-- pr2:applies-to all
-- 007: how many rule steps led to each entry, so that rule chains that loop stop at a hop limit.

-- 0 for a message from a client; a message a rule sends because of an entry carries that entry's hops + 1.
alter table pr2_journal add column hops smallint not null default 0 check (hops >= 0);
alter table pr2_outbox add column hops smallint not null default 0 check (hops >= 0);
