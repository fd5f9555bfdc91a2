-- pr2:applies-to all
-- 012: a count of the transactions that changed an agent's effects, beside its mark.

-- An agent may change its effects without moving its mark (the records agent refolds an actor whose stamp
-- anti-entropy lowered). A silo that keeps in memory what it wrote (ProjectedRecords) must then not trust
-- its copy just because the mark is where it left it: every committed batch adds one to revision, and
-- such a copy is valid only at the (position, revision) it was left at.
alter table pr2_agent_mark add column revision bigint not null default 0;
