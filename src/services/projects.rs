//! Projects.

use uuid::Uuid;

use crate::db::Database;
use crate::error::{AppError, AppResult};
use crate::models::Project;
use crate::services::{is_foreign_key_violation, is_unique_violation};
use crate::timestamp;

const INSERT_PROJECT: &str = r#"
    INSERT INTO projects (id, organization_id, name, created_at)
    VALUES ($1, $2, $3, $4)
"#;

const PROJECT_EXISTS: &str = r#"
    SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1)
"#;

/// Creates a project in an organization.
///
/// `404` when the organization does not exist; `409` when it already has a
/// project of that name.
pub async fn insert_project(
    db: &Database,
    organization_id: Uuid,
    name: String,
) -> AppResult<Project> {
    let project = Project {
        id: Uuid::now_v7(),
        organization_id,
        name,
        created_at: timestamp::now(),
    };

    let inserted = match db {
        Database::Sqlite(db) => db
            .group_commit
            .execute(
                sqlx::query(INSERT_PROJECT)
                    .bind(project.id.hyphenated())
                    .bind(project.organization_id.hyphenated())
                    .bind(&project.name)
                    .bind(timestamp::format_millis(project.created_at)),
            )
            .await?
            .map(drop),
        Database::Postgres(pool) => sqlx::query(INSERT_PROJECT)
            .bind(project.id)
            .bind(project.organization_id)
            .bind(&project.name)
            .bind(project.created_at)
            .execute(pool)
            .await
            .map(drop),
    };

    match inserted {
        Ok(_) => Ok(project),
        Err(e) if is_foreign_key_violation(&e) => Err(AppError::NotFound("Organization not found")),
        Err(e) if is_unique_violation(&e) => Err(AppError::Conflict(
            "This organization already has a project with this name",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Whether a project with this id exists.
pub async fn project_exists(db: &Database, project_id: Uuid) -> AppResult<bool> {
    let exists = match db {
        Database::Sqlite(db) => {
            sqlx::query_scalar(PROJECT_EXISTS)
                .bind(project_id.hyphenated())
                .fetch_one(&db.reader)
                .await?
        }
        Database::Postgres(pool) => {
            sqlx::query_scalar(PROJECT_EXISTS)
                .bind(project_id)
                .fetch_one(pool)
                .await?
        }
    };
    Ok(exists)
}
