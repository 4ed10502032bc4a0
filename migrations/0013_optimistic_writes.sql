-- Optimistic writes on the hot paths (a till purchase, a ping batch): the service reads what
-- it needs without a lock, decides in Python, then writes with ONE statement that runs as its
-- own transaction and checks that what it read is unchanged (the row version, `xmin`, of the
-- wallet account or of the member's geo state). `write_guard` is how that statement refuses:
-- it raises serialization_failure, so the whole statement, and every row it wrote, rolls back
-- and the service reads again (after a few conflicts it takes the row lock instead). A row
-- lock is then held only while that one statement runs and commits.
CREATE FUNCTION write_guard(ok boolean, what text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION '% changed since it was read', what
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN true;
END $$;
