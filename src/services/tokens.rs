//! Project API tokens.

use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use crate::db::Database;
use crate::error::{AppError, AppResult};
use crate::services::is_foreign_key_violation;
use crate::timestamp;
use crate::token::{NewToken, TokenHash};

/// A token just created: the only moment its raw value exists.
pub struct CreatedToken {
    pub id: Uuid,
    pub project_id: Uuid,
    pub token: NewToken,
    pub created_at: OffsetDateTime,
}

/// A stored, unrevoked token, as the auth extractor needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActiveToken {
    pub token_id: Uuid,
    pub project_id: Uuid,
}

const INSERT_TOKEN: &str = r#"
    INSERT INTO api_tokens (id, project_id, token_hash, prefix, created_at)
    VALUES ($1, $2, $3, $4, $5)
"#;

const FIND_ACTIVE_TOKEN: &str = r#"
    SELECT id, project_id
    FROM api_tokens
    WHERE token_hash = $1
      AND revoked_at IS NULL
"#;

/// Creates a token for a project. `404` when the project does not exist.
pub async fn insert_token(db: &Database, project_id: Uuid) -> AppResult<CreatedToken> {
    let token = NewToken::generate().map_err(AppError::internal)?;
    let created = CreatedToken {
        id: Uuid::now_v7(),
        project_id,
        token,
        created_at: timestamp::now(),
    };

    let inserted = match db {
        Database::Sqlite(db) => sqlx::query(INSERT_TOKEN)
            .bind(created.id.hyphenated())
            .bind(created.project_id.hyphenated())
            .bind(created.token.hash.as_str())
            .bind(created.token.display_prefix())
            .bind(timestamp::format_millis(created.created_at))
            .execute(&db.writer)
            .await
            .map(drop),
        Database::Postgres(pool) => sqlx::query(INSERT_TOKEN)
            .bind(created.id)
            .bind(created.project_id)
            .bind(created.token.hash.as_str())
            .bind(created.token.display_prefix())
            .bind(created.created_at)
            .execute(pool)
            .await
            .map(drop),
    };

    match inserted {
        Ok(_) => Ok(created),
        Err(e) if is_foreign_key_violation(&e) => Err(AppError::NotFound("Project not found")),
        Err(e) => Err(e.into()),
    }
}

/// Looks up an unrevoked token by its digest.
pub async fn find_active_token(db: &Database, hash: &TokenHash) -> AppResult<Option<ActiveToken>> {
    let token = match db {
        Database::Sqlite(db) => sqlx::query(FIND_ACTIVE_TOKEN)
            .bind(hash.as_str())
            .fetch_optional(&db.reader)
            .await?
            .map(|row| -> Result<_, sqlx::Error> {
                Ok(ActiveToken {
                    token_id: row.try_get::<Hyphenated, _>("id")?.into_uuid(),
                    project_id: row.try_get::<Hyphenated, _>("project_id")?.into_uuid(),
                })
            })
            .transpose()?,
        Database::Postgres(pool) => sqlx::query(FIND_ACTIVE_TOKEN)
            .bind(hash.as_str())
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<_, sqlx::Error> {
                Ok(ActiveToken {
                    token_id: row.try_get("id")?,
                    project_id: row.try_get("project_id")?,
                })
            })
            .transpose()?,
    };
    Ok(token)
}
