-- pr2:applies-to all
-- 020: a records view rebuild can be canceled (pr2 projections cancel): its shadow is dropped, the live view kept.

alter table pr2_projection_rebuild drop constraint pr2_projection_rebuild_state_check;
alter table pr2_projection_rebuild add constraint pr2_projection_rebuild_state_check check (state in ('building', 'done', 'canceled'));
