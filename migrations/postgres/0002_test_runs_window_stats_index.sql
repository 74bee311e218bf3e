-- Indexes for statistics over a time window, the same as on SQLite. project_id
-- leads both, as in every index of test_runs.
--
-- A window's counts, mean and maximum can be answered by an index-only scan of
-- the first; percentiles either sort the window's durations from it or walk
-- the second, which holds the project's durations in order. The planner picks.
CREATE INDEX test_runs_project_timestamp_duration
    ON test_runs (project_id, timestamp_us, duration_ms, status);

CREATE INDEX test_runs_project_duration
    ON test_runs (project_id, duration_ms, timestamp_us);
