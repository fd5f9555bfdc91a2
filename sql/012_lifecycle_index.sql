-- pr2:applies-to all
-- 012: the inserts and cancels of a journal, by position, for agents that ignore modifies (the object directory).

-- Partial: only entries that start or end an actor are in it, so such an agent reads a range of positions without
-- touching the modifies in it, and a modify costs the writer nothing more. 2 is modify (MessageKind, never renumbered).
create index if not exists pr2_journal_inserts_and_cancels on pr2_journal (position) where kind <> 2;
