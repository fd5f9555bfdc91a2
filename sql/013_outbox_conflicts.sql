-- pr2:applies-to all
-- 013: outbox messages settled because the receiver already held their id with other content.

-- Every replica runs every rule and sends its copy of each message under the same id. A copy whose
-- record-dependent parts a lagging replica computed differently meets IdempotencyConflict: the effect
-- took place once, with another replica's copy. The row is settled as delivered and says so here, so
-- the case is visible (and counted by the fault suite) rather than silent.
alter table pr2_outbox add column conflict text;
