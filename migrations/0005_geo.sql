-- Geofencing: zone change propagation, visits, the member's last accepted ping, and the
-- optional short-lived raw ping store.

-- Every zone change bumps its program's `zones_version` and stamps the store with it
-- (`zone_seq`). The program row lock taken by that bump orders changes by commit, so a worker
-- whose snapshot is at version v reloads exactly the stores with zone_seq > v. A NOTIFY on
-- channel `zones_changed` tells every worker at once; the ping path also compares versions,
-- so the next ping after a change never matches against a stale snapshot.
ALTER TABLE programs ADD COLUMN zones_version bigint NOT NULL DEFAULT 0;
ALTER TABLE stores ADD COLUMN zone_seq bigint NOT NULL DEFAULT 0;
CREATE INDEX stores_zone_seq ON stores (program_id, zone_seq);

CREATE FUNCTION stores_zone_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.zone = OLD.zone
       AND NEW.deleted_at IS NOT DISTINCT FROM OLD.deleted_at THEN
        RETURN NEW;
    END IF;
    UPDATE programs SET zones_version = zones_version + 1
     WHERE id = NEW.program_id RETURNING zones_version INTO NEW.zone_seq;
    PERFORM pg_notify('zones_changed', NEW.program_id::text);
    RETURN NEW;
END $$;

CREATE TRIGGER stores_zone_changed BEFORE INSERT OR UPDATE ON stores
    FOR EACH ROW EXECUTE FUNCTION stores_zone_changed();

-- One row per visit of a member to a store. An open visit (exited_at IS NULL) also carries
-- the state of the enter/dwell/exit state machine (geo/visits.py).
CREATE TABLE visits (
    id             uuid PRIMARY KEY,
    member_id      uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    program_id     uuid NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    store_id       uuid NOT NULL REFERENCES stores(id) ON DELETE CASCADE,
    entered_at     timestamptz NOT NULL,
    last_seen_at   timestamptz NOT NULL,
    dwell_at       timestamptz,
    outside_since  timestamptz,
    exited_at      timestamptz,
    CHECK (last_seen_at >= entered_at),
    CHECK (exited_at IS NULL OR exited_at >= entered_at)
);
CREATE UNIQUE INDEX visits_one_open ON visits (member_id, store_id) WHERE exited_at IS NULL;
CREATE INDEX visits_store_entered ON visits (store_id, entered_at);
CREATE INDEX visits_member ON visits (member_id, entered_at);

-- The last accepted ping, needed only to refuse out-of-order and impossible-speed pings.
-- It is the single location point kept per member (deleted with the member).
CREATE TABLE member_geo_state (
    member_id     uuid PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
    last_ping_at  timestamptz NOT NULL,
    last_lat      double precision NOT NULL,
    last_lon      double precision NOT NULL
);

-- Raw pings, only when LOYALTY_RAW_PING_RETENTION_S > 0 (off by default), purged after it.
CREATE TABLE raw_pings (
    member_id   uuid NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    accuracy_m  real NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX raw_pings_expires ON raw_pings (expires_at);
CREATE INDEX raw_pings_member ON raw_pings (member_id, at);
