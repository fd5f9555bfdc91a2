-- pr2:applies-to all
-- 010: a group commit in one round trip when the writer's head cannot have moved.

-- The journal writer remembers where its last commit left the head (position, clock, origin position).
-- While nothing else wrote there (no anti-entropy import, no newer writer), it sends the head's move and
-- the new entries as one batch, committed in one implicit transaction. This moves the head only from the
-- place the writer remembers, under the head's row lock, and otherwise raises PR2HM: the whole batch
-- rolls back and the writer takes the checked path (lock, look up MessageIds and versions, insert).
create function pr2_move_writer_head(p_epoch bigint, p_position bigint, p_clock bigint, p_origin_position bigint,
                                     p_new_position bigint, p_new_clock bigint, p_new_origin_position bigint)
returns void
language plpgsql as $$
begin
    update pr2_writer_head
    set position = p_new_position, clock = p_new_clock, origin_position = p_new_origin_position, updated_at = now()
    where epoch = p_epoch and position = p_position and clock = p_clock and origin_position = p_origin_position;
    if not found then
        raise exception 'the writer head is no longer at epoch %, position %, clock %', p_epoch, p_position, p_clock
            using errcode = 'PR2HM';
    end if;
end;
$$;
