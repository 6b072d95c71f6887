-- 0019_inline_checkout_rows.sql
-- What: `toast_tuple_target = 8160` (the maximum) on every partition of `events` and on
--       `offline_checkouts`: a row up to ~8 KB is stored as it is, in its heap page.
-- Why:  a `license.checked_out` event (~2.1 KB of data: it carries the signed file) and
--       its checkouts row (~2.1 KB of document, the same file) are just over the default
--       2 KB threshold, so every checkout had PostgreSQL try to compress both with pglz
--       — base64 and a signature do not compress: measured stored sizes equal the raw
--       text — and then move each value to the TOAST table (two more heap rows and an
--       index entry apiece). perf put that at about a tenth of the database CPU of a
--       checkout; an A/B of 300-checkout blocks (same process, option toggled between
--       blocks) measured ~1,130 -> ~930 µs of backend CPU per checkout. Reads gain too:
--       replaying or listing checkouts no longer detoasts.
-- Cost: none in space (the values were stored uncompressed anyway); rows above ~8 KB
--       are still compressed and moved out of line as before.
-- Compatibility: affects rows written from now on; existing rows stay as they are
--       (both forms read the same). `events` is partitioned and takes no storage
--       parameters itself: a partition added by hand later should get the option too
--       (docs/event-store.md).

DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'events'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s SET (toast_tuple_target = 8160)', part);
    END LOOP;
END
$$;

ALTER TABLE offline_checkouts SET (toast_tuple_target = 8160);
