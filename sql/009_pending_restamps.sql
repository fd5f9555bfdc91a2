-- pr2:applies-to all
-- 009: finding restamps not yet refolded without reading them all.

-- The journal writer projects records in its own commit only while no refold is pending (see
-- InlineRecords); it asks on every group commit, and pr2_restamp only grows, so the question must not
-- cost a scan of every restamp ever recorded.
create index pr2_restamp_pending on pr2_restamp (message_id) where not refolded;
