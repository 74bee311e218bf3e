//! Organizations.

use uuid::Uuid;

use crate::db::group_commit::Statement;
use crate::db::{Database, Violation};
use crate::error::{AppError, AppResult};
use crate::models::Organization;
use crate::services::checked;
use crate::timestamp;

const INSERT_ORG: &str = r#"
    INSERT INTO organizations (id, name, created_at)
    VALUES ($1, $2, $3)
"#;

/// Creates an organization. `409` when the exact name is taken.
pub async fn insert_org(db: &Database, name: String) -> AppResult<Organization> {
    let org = Organization {
        id: Uuid::now_v7(),
        name,
        created_at: timestamp::now(),
    };

    let inserted = match db {
        Database::Sqlite(db) => {
            db.group_commit
                .execute(
                    Statement::new(INSERT_ORG)
                        .bind_uuid(org.id)
                        .bind(org.name.clone())
                        .bind(timestamp::format_millis(org.created_at)),
                )
                .await?
        }
        Database::Postgres(pool) => checked(
            sqlx::query(INSERT_ORG)
                .bind(org.id)
                .bind(&org.name)
                .bind(org.created_at)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
        )?,
    };

    match inserted {
        Ok(_) => Ok(org),
        Err(Violation::Unique) => Err(AppError::Conflict(
            "An organization with this name already exists",
        )),
        Err(unexpected @ Violation::ForeignKey) => Err(unexpected.into()),
    }
}
