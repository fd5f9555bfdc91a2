-- pr2:applies-to all
-- 017: which replica the last writer chose as its primary, so that a chosen primary stays chosen.

-- A new writer picks the reachable replica holding the most entries; among replicas holding as much, the one a writer
-- opened on most recently (the highest primary_term) comes first, then the lowest index. A primary moved on purpose
-- (pr2 replicas promote) therefore stays where it was moved when the writer is activated again, rather than going back
-- to replica 0 once anti-entropy has made the two equal. Only a preference: any replica the writer gathers into is a
-- correct primary.
alter table pr2_writer_head add column primary_term bigint not null default 0;
