//! The runs the group-commit writer has recently stored or read back.
//!
//! A replayed run's insert conflicts, and its answer is the run stored under
//! its `(project_id, run_id)`. Reading that row back is most of a replay's
//! cost to the writer, and CI retries replay the same few runs, so the
//! writer keeps the last thousand or so it has answered and reads back only
//! the others. The insert still goes first: memory only supplies the stored
//! row once the database has said the key is taken.
//!
//! What is remembered stays true because a stored run is never changed and
//! this writer is the only one that stores runs in its file. Rows are only
//! ever deleted (by `clean-db`), and a deleted key no longer conflicts: its
//! next ingest is stored afresh and remembered in place of the old run.
//! Memory is dropped with the connection after a failed batch, when what was
//! committed is no longer known.

use std::collections::HashMap;

use uuid::Uuid;

use crate::models::TestRun;

/// How many runs each of the two generations holds: at most twice this many
/// are remembered, about 200 bytes each.
const GENERATION: usize = 512;

/// A run's idempotency key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RunKey {
    project_id: Uuid,
    run_id: Uuid,
}

impl RunKey {
    pub fn of(run: &TestRun) -> Self {
        Self {
            project_id: run.project_id,
            run_id: run.run_id,
        }
    }
}

/// Recently answered runs by key, least recently used forgotten first: new
/// entries fill `current`; when it is full it becomes `previous` and the
/// old `previous` is forgotten. A run found in `previous` moves back.
#[derive(Debug, Default)]
pub struct RecentRuns {
    // Boxed, so that a table is 40 bytes a slot: tables of whole runs (136
    // bytes a slot), and larger generations, measured as several MiB more
    // resident memory under load than the runs themselves account for.
    current: HashMap<RunKey, Box<TestRun>>,
    previous: HashMap<RunKey, Box<TestRun>>,
}

impl RecentRuns {
    /// The stored run under `key`, if it is remembered.
    pub fn get(&mut self, key: RunKey) -> Option<TestRun> {
        if let Some(run) = self.current.get(&key) {
            return Some(TestRun::clone(run));
        }
        let run = self.previous.remove(&key)?;
        let answer = TestRun::clone(&run);
        self.insert(key, run);
        Some(answer)
    }

    /// Remembers `run` as the one stored under its key.
    pub fn remember(&mut self, run: &TestRun) {
        let key = RunKey::of(run);
        // A replay answered from `current` is already there: no new copy.
        if self.current.get(&key).is_some_and(|known| **known == *run) {
            return;
        }
        self.insert(key, Box::new(run.clone()));
    }

    fn insert(&mut self, key: RunKey, run: Box<TestRun>) {
        if self.current.len() >= GENERATION && !self.current.contains_key(&key) {
            // The two tables trade places and keep their capacity: turning
            // over allocates nothing, so memory stays flat under any load.
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
        }
        self.current.insert(key, run);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::RunStatus;
    use crate::timestamp;

    fn run(n: u128) -> TestRun {
        TestRun {
            id: Uuid::now_v7(),
            project_id: Uuid::from_u128(1),
            run_id: Uuid::from_u128(n),
            status: RunStatus::Passed,
            duration_ms: 1,
            timestamp: "2026-01-12T10:10:00Z".to_owned(),
            created_at: timestamp::now(),
        }
    }

    #[test]
    fn a_remembered_run_is_found_by_its_key_and_a_later_one_replaces_it() {
        let mut recent = RecentRuns::default();
        let first = run(7);
        recent.remember(&first);
        assert_eq!(recent.get(RunKey::of(&first)), Some(first.clone()));

        let stored_again = run(7);
        recent.remember(&stored_again);
        assert_eq!(recent.get(RunKey::of(&first)), Some(stored_again));
        assert_eq!(recent.get(RunKey::of(&run(8))), None);
    }

    #[test]
    fn it_holds_at_most_two_generations_and_keeps_what_is_used() {
        let mut recent = RecentRuns::default();
        let kept = run(0);
        recent.remember(&kept);
        for n in 1..(3 * GENERATION as u128) {
            recent.remember(&run(n));
            if n % (GENERATION as u128 / 2) == 0 {
                assert!(recent.get(RunKey::of(&kept)).is_some(), "used, so kept");
            }
        }

        assert!(recent.len() <= 2 * GENERATION);
        assert!(recent.get(RunKey::of(&kept)).is_some());
        assert_eq!(
            recent.get(RunKey::of(&run(1))),
            None,
            "the oldest unused is forgotten"
        );
        let newest = run(3 * GENERATION as u128 - 1);
        assert!(recent.get(RunKey::of(&newest)).is_some());
    }
}
