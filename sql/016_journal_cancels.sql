-- pr2:applies-to all
-- 016: the cancels of each actor, found by one index probe.

-- An atomic batch is judged by the journal writer against each actor's record: whether it has one (an insert, always
-- at version 1) and whether it was canceled. Without this index "was it canceled" reads every entry of the actor
-- (the kind is not in the (actor_id, actor_version) index), under the head's lock, and grows with the actor's history.
create index pr2_journal_cancels on pr2_journal (actor_id) where kind = 3;
