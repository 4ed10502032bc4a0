-- Time-ordered ids for the access log (issue 13: the till write, profiled).
--
-- Every till purchase appends an access-log row (the staff read of the member's balances). Its
-- id defaulted to a random (version 4) UUID, so each insert went to a random leaf page of the
-- primary key: once the log outgrows the cache that is a page read per insert and, after each
-- checkpoint, a full-page image in the WAL (~2.4 kB per purchase over a 200,000-purchase
-- history, for an index entry of ~0.1 kB). A version-7 UUID starts with the time in
-- milliseconds, so new ids go to the rightmost leaf. The ledger's own rows (transactions,
-- points lots, ledger entries) get version-7 ids from the service (`wallet/kernel/ids.py`).
-- Existing rows keep their ids; the order of ids was never meaningful (the log is read by
-- time, `id` breaks ties only).
--
-- `uuidv7()` is built in from PostgreSQL 18; on an older server (DATABASE_URL) the same
-- function is defined here in SQL: the random UUID's first 48 bits replaced by the Unix time
-- in milliseconds, and its version nibble set from 4 (0100) to 7 (0111).
DO $$
BEGIN
    IF current_setting('server_version_num')::int < 180000 THEN
        CREATE FUNCTION uuidv7() RETURNS uuid LANGUAGE sql VOLATILE AS $f$
            SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
                       substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                                 FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
        $f$;
    END IF;
END $$;

ALTER TABLE access_log ALTER COLUMN id SET DEFAULT uuidv7();
