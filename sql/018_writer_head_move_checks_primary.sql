-- pr2:applies-to all
-- 018: the one-round-trip head move (sql/010) also requires the replica to still be this writer's primary.
-- A replica restored from a backup (pr2 restore) can come back under a writer still open on it with the same epoch,
-- position and clock it remembers; its head then says primary_term = -1 (never opened on), so the move is refused
-- and the writer takes the checked path, which finds the new replica identity and stops. A live writer's replica has
-- primary_term = epoch (set when it opened); 0 is a replica not opened on since sql/017 was applied.
create or replace function pr2_move_writer_head(p_epoch bigint, p_position bigint, p_clock bigint, p_origin_position bigint,
                                                p_new_position bigint, p_new_clock bigint, p_new_origin_position bigint)
returns void
language plpgsql as $$
begin
    update pr2_writer_head
    set position = p_new_position, clock = p_new_clock, origin_position = p_new_origin_position, updated_at = now()
    where epoch = p_epoch and position = p_position and clock = p_clock and origin_position = p_origin_position
      and primary_term in (p_epoch, 0);
    if not found then
        raise exception 'the writer head is no longer at epoch %, position %, clock % (or no longer this writer''s primary)', p_epoch, p_position, p_clock
            using errcode = 'PR2HM';
    end if;
end;
$$;
