//! The service layer: one module per resource, each running its queries on
//! both backends. Constraint violations are given their meaning here, right
//! after the statement that can raise them.

pub mod ingest;
pub mod orgs;
pub mod projects;
pub mod run_queries;
pub mod runs;
pub mod tokens;

use crate::db::Violation;
use crate::error::AppResult;

/// The rows a PostgreSQL write changed, or the constraint it broke; any
/// other failure is an error. The SQLite writer answers in the same terms.
pub(crate) fn checked(result: Result<u64, sqlx::Error>) -> AppResult<Result<u64, Violation>> {
    match result {
        Ok(changed) => Ok(Ok(changed)),
        Err(e) if is_unique_violation(&e) => Ok(Err(Violation::Unique)),
        Err(e) if is_foreign_key_violation(&e) => Ok(Err(Violation::ForeignKey)),
        Err(e) => Err(e.into()),
    }
}

/// Whether the statement failed on a UNIQUE or PRIMARY KEY constraint.
///
/// sqlx's `constraint()` is always `None` on SQLite, so this goes by kind.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether the statement failed on a FOREIGN KEY constraint.
pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}
