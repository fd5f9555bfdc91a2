-- pr2:applies-to all
-- 021: rebuilding a rule's views beside the live ones (pr2 projections rebuild <shard> rule-<name>).

-- A rule's rebuild folds the journal again, from where the rule starts, into these rows (by the rule's agent name), under
-- its own mark (the rule's mark name with "~next"), never past the live rule's mark; the swap replaces, in one
-- transaction, the documents the rule last wrote in pr2_view with them. Rows of one rebuild at a time per rule.
create table pr2_view_rebuild (
    projection  text not null,
    view        text not null,
    key         text not null,
    doc         jsonb not null,
    position    bigint not null,
    primary key (projection, view, key)
);

-- What the rebuild folds for when that can change under it: a rule's mark name (its generation). A rule replaced during
-- its rebuild starts the rebuild over.
alter table pr2_projection_rebuild add column follows text;

-- The swap replaces the documents a rule last wrote: found by rule, not by scanning every rule's views.
create index pr2_view_rule on pr2_view (rule);
