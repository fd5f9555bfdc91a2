-- pr2:applies-to all
-- 019: rebuilding the records view beside the live one (pr2 projections rebuild).

-- One row per rebuilt projection of this replica. A rebuild folds the journal from the start into a shadow table
-- (pr2_record_next) under its own mark, then swaps it in, in one transaction with the records agent's mark locked.
-- generation counts the rebuilds requested; state says where the last one is: building (the shadow is filling, or the
-- swap is being tried) or done (swapped in at swapped_at, the view then covering position swapped_position).
create table pr2_projection_rebuild (
    projection        text primary key,
    generation        bigint not null check (generation > 0),
    state             text not null check (state in ('building', 'done')),
    started_at        timestamptz not null default now(),
    swapped_at        timestamptz,
    swapped_position  bigint,
    last_error        text
);

-- A restamp recorded after a rebuild began may change entries its shadow already folded: the shadow refolds those
-- actors under this flag, as the records agent does under refolded. A rebuild sets it for every restamp already
-- recorded (the shadow reads those stamps when it reaches the entries).
alter table pr2_restamp add column next_refolded boolean not null default false;
create index pr2_restamp_next_pending on pr2_restamp (message_id) where not next_refolded;
