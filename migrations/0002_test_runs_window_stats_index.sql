-- Indexes for statistics over a time window. project_id leads both, as in
-- every index of test_runs.
--
-- A window's counts, mean and maximum read only the first index: the window
-- is a range of timestamp_us, and duration_ms and status come with each entry.
-- Its percentiles sort the window's durations from that same index when the
-- window is small, or walk the second index, which holds the project's
-- durations already in order, when it is large.
CREATE INDEX test_runs_project_timestamp_duration
    ON test_runs (project_id, timestamp_us, duration_ms, status);

CREATE INDEX test_runs_project_duration
    ON test_runs (project_id, duration_ms, timestamp_us);
