//! Project API tokens.

use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use crate::db::group_commit::Statement;
use crate::db::{Database, Violation};
use crate::error::{AppError, AppResult};
use crate::models::TokenSummary;
use crate::services::checked;
use crate::services::projects::project_exists;
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

const LIST_TOKENS: &str = r#"
    SELECT id, prefix, created_at, last_used_at, revoked_at
    FROM api_tokens
    WHERE project_id = $1
    ORDER BY created_at, id
"#;

const REVOKE_TOKEN: &str = r#"
    UPDATE api_tokens
    SET revoked_at = COALESCE(revoked_at, $2)
    WHERE id = $1
"#;

// Never moves last_used_at backwards, whichever instance writes first.
const RECORD_TOKEN_USE: &str = r#"
    UPDATE api_tokens
    SET last_used_at = $2
    WHERE id = $1
      AND (last_used_at IS NULL OR last_used_at < $2)
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
        Database::Sqlite(db) => {
            db.group_commit
                .execute(
                    Statement::new(INSERT_TOKEN)
                        .bind_uuid(created.id)
                        .bind_uuid(created.project_id)
                        .bind(created.token.hash.as_str().to_owned())
                        .bind(created.token.display_prefix().to_owned())
                        .bind(timestamp::format_millis(created.created_at)),
                )
                .await?
        }
        Database::Postgres(pool) => checked(
            sqlx::query(INSERT_TOKEN)
                .bind(created.id)
                .bind(created.project_id)
                .bind(created.token.hash.as_str())
                .bind(created.token.display_prefix())
                .bind(created.created_at)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
        )?,
    };

    match inserted {
        Ok(_) => Ok(created),
        Err(Violation::ForeignKey) => Err(AppError::NotFound("Project not found")),
        // The token is 256 random bits and its id is new: neither repeats.
        Err(unexpected @ Violation::Unique) => Err(unexpected.into()),
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

/// Every token of a project, oldest first, revoked ones included.
/// `404` when the project does not exist.
pub async fn list_tokens(db: &Database, project_id: Uuid) -> AppResult<Vec<TokenSummary>> {
    if !project_exists(db, project_id).await? {
        return Err(AppError::NotFound("Project not found"));
    }

    match db {
        Database::Sqlite(db) => sqlx::query(LIST_TOKENS)
            .bind(project_id.hyphenated())
            .fetch_all(&db.reader)
            .await?
            .iter()
            .map(sqlite_token)
            .collect(),
        Database::Postgres(pool) => sqlx::query(LIST_TOKENS)
            .bind(project_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(postgres_token)
            .collect(),
    }
}

/// Revokes a token; revoking it again keeps the first `revoked_at`.
/// `404` when no token has that id.
pub async fn revoke_token(db: &Database, token_id: Uuid) -> AppResult<()> {
    let now = timestamp::now();

    let matched = match db {
        Database::Sqlite(db) => {
            db.group_commit
                .execute(
                    Statement::new(REVOKE_TOKEN)
                        .bind_uuid(token_id)
                        .bind(timestamp::format_millis(now)),
                )
                .await??
        }
        Database::Postgres(pool) => sqlx::query(REVOKE_TOKEN)
            .bind(token_id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected(),
    };

    if matched == 0 {
        return Err(AppError::NotFound("Token not found"));
    }
    Ok(())
}

/// Sets a token's `last_used_at` to `minute`, unless it already holds that
/// minute or a later one. On SQLite it rides in the next group commit.
pub async fn record_token_use(
    db: &Database,
    token_id: Uuid,
    minute: OffsetDateTime,
) -> AppResult<()> {
    match db {
        Database::Sqlite(db) => db
            .group_commit
            .execute(
                Statement::new(RECORD_TOKEN_USE)
                    .bind_uuid(token_id)
                    .bind(timestamp::format_millis(minute)),
            )
            .await?
            .map(drop)?,
        Database::Postgres(pool) => sqlx::query(RECORD_TOKEN_USE)
            .bind(token_id)
            .bind(minute)
            .execute(pool)
            .await
            .map(drop)?,
    }
    Ok(())
}

fn sqlite_token(row: &SqliteRow) -> AppResult<TokenSummary> {
    let stored = |column: &str| -> AppResult<Option<OffsetDateTime>> {
        row.try_get::<Option<String>, _>(column)?
            .map(|text| {
                timestamp::parse_stored(&text)
                    .ok_or_else(|| AppError::internal("stored token time is not RFC 3339"))
            })
            .transpose()
    };
    Ok(TokenSummary {
        id: row.try_get::<Hyphenated, _>("id")?.into_uuid(),
        prefix: row.try_get("prefix")?,
        created_at: stored("created_at")?
            .ok_or_else(|| AppError::internal("stored token has no created_at"))?,
        last_used_at: stored("last_used_at")?,
        revoked_at: stored("revoked_at")?,
    })
}

fn postgres_token(row: &PgRow) -> AppResult<TokenSummary> {
    Ok(TokenSummary {
        id: row.try_get("id")?,
        prefix: row.try_get("prefix")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}
