-- +goose Up
-- The scheduler keeps only the schedules due soon in memory and pages through the rest
-- by next fire time (ScheduleListDue), and through those not yet initialised by id
-- (ScheduleListNew); both partial indexes cover only what those queries can return.
CREATE INDEX schedules_due ON schedules (next_fire_at, id) WHERE done = 0;
CREATE INDEX schedules_new ON schedules (id) WHERE next_fire_at IS NULL AND done = 0;

-- +goose Down
DROP INDEX schedules_new;
DROP INDEX schedules_due;
