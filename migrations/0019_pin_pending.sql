-- The lock set by the PIN attempt that takes the last place is provisional until that
-- attempt's PIN is verified (a right PIN lifts it, a wrong one confirms it): while
-- `pin_lock_pending_until` is ahead, other PIN checks on the card are answered "in progress,
-- retry" (409 `/problems/pin-check-in-progress`), not "locked for 15 minutes". A check that
-- never reports (a crashed worker) leaves the lock confirmed once the bound passes.
ALTER TABLE members ADD COLUMN pin_lock_pending_until timestamptz;
