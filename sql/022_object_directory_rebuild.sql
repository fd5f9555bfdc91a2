-- pr2:applies-to control
-- 022: rebuilding the object directory beside the live one (pr2 projections rebuild 0 object-directory).

-- A rebuild folds every shard's journals again (each replica's, as the live directory does) into this table, under marks
-- of its own ("object-directory~next"), in the database of shard 0's replica that was primary when it started; the swap
-- then makes the live directory equal to it in one transaction with the live marks locked. The reports commute and
-- only grow, so the rebuild may fold past the live marks: the live agent applying those entries again changes nothing.
-- The live table's columns, defaults and checks (its own key, not its index by type: nothing reads the shadow by type).
create table pr2_object_directory_rebuild (like pr2_object_directory including defaults including constraints);
alter table pr2_object_directory_rebuild add primary key (shard, actor_id);
