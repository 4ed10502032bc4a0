-- Every change to what a program's offer planning reads about its campaigns bumps
-- `programs.campaigns_version`, so a worker can keep the program's active campaigns in memory
-- and reload them only when the version it reads in the ping's first query has moved
-- (geo/issuance.py), as `zones_version` does for zones (0005).
--
-- What counts: any insert, delete or change of a campaign row except the `issued` counter
-- alone (that one is taken by every issued offer, and is read fresh with the member's facts;
-- bumping on it would also make every offer queue on the program row), and a change of the
-- program's time zone (offer rules are evaluated in it).
ALTER TABLE programs ADD COLUMN campaigns_version bigint NOT NULL DEFAULT 0;

CREATE FUNCTION campaigns_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE programs SET campaigns_version = campaigns_version + 1
     WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.program_id ELSE NEW.program_id END
        OR (TG_OP = 'UPDATE' AND id = OLD.program_id);
    RETURN NULL;
END $$;

CREATE TRIGGER campaigns_changed_insert_delete AFTER INSERT OR DELETE ON campaigns
    FOR EACH ROW EXECUTE FUNCTION campaigns_changed();
CREATE TRIGGER campaigns_changed_update AFTER UPDATE ON campaigns
    FOR EACH ROW WHEN ((to_jsonb(OLD) - 'issued') IS DISTINCT FROM (to_jsonb(NEW) - 'issued'))
    EXECUTE FUNCTION campaigns_changed();

CREATE FUNCTION programs_timezone_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.campaigns_version := OLD.campaigns_version + 1;
    RETURN NEW;
END $$;

CREATE TRIGGER programs_timezone_changed BEFORE UPDATE OF timezone ON programs
    FOR EACH ROW WHEN (NEW.timezone IS DISTINCT FROM OLD.timezone)
    EXECUTE FUNCTION programs_timezone_changed();
