//! Projects.

use uuid::Uuid;

use crate::db::group_commit::Statement;
use crate::db::{Database, Violation};
use crate::error::{AppError, AppResult};
use crate::models::Project;
use crate::services::checked;
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
        Database::Sqlite(db) => {
            db.group_commit
                .execute(
                    Statement::new(INSERT_PROJECT)
                        .bind_uuid(project.id)
                        .bind_uuid(project.organization_id)
                        .bind(project.name.clone())
                        .bind(timestamp::format_millis(project.created_at)),
                )
                .await?
        }
        Database::Postgres(pool) => checked(
            sqlx::query(INSERT_PROJECT)
                .bind(project.id)
                .bind(project.organization_id)
                .bind(&project.name)
                .bind(project.created_at)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
        )?,
    };

    match inserted {
        Ok(_) => Ok(project),
        Err(Violation::ForeignKey) => Err(AppError::NotFound("Organization not found")),
        Err(Violation::Unique) => Err(AppError::Conflict(
            "This organization already has a project with this name",
        )),
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
