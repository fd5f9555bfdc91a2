-- pr2:applies-to all
-- 011: a commit from memory may also carry actors the writer has not written before.

-- For those, the writer takes the version the actor grain proposes as the truth (latest + 1) and sends
-- this check in the same transaction, after the head's move (so under the head's lock, while no other
-- entry can arrive): one index probe per actor on (actor_id, actor_version). Any actor not at the version
-- assumed raises PR2SV, which rolls the whole commit back; the writer then takes the checked path, which
-- answers the stale append with StaleActor.
create function pr2_expect_latest_versions(p_actor_ids text[], p_versions bigint[])
returns void
language plpgsql as $$
declare
    v_actor text;
begin
    select a.actor_id into v_actor
    from unnest(p_actor_ids, p_versions) as a(actor_id, version)
    where coalesce((select j.actor_version from pr2_journal j where j.actor_id = a.actor_id
                    order by j.actor_version desc limit 1), 0) <> a.version
    limit 1;
    if found then
        raise exception 'actor % is not at the version its append assumed', v_actor using errcode = 'PR2SV';
    end if;
end;
$$;
