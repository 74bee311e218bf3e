//! Organizations.

use uuid::Uuid;

use crate::db::Database;
use crate::error::{AppError, AppResult};
use crate::models::Organization;
use crate::services::is_unique_violation;
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
        Database::Sqlite(db) => db
            .group_commit
            .execute(
                sqlx::query(INSERT_ORG)
                    .bind(org.id.hyphenated())
                    .bind(&org.name)
                    .bind(timestamp::format_millis(org.created_at)),
            )
            .await?
            .map(drop),
        Database::Postgres(pool) => sqlx::query(INSERT_ORG)
            .bind(org.id)
            .bind(&org.name)
            .bind(org.created_at)
            .execute(pool)
            .await
            .map(drop),
    };

    match inserted {
        Ok(_) => Ok(org),
        Err(e) if is_unique_violation(&e) => Err(AppError::Conflict(
            "An organization with this name already exists",
        )),
        Err(e) => Err(e.into()),
    }
}
