//! The records the API returns. They are built from validated input or read
//! from the database, and never carry a token or a token hash.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::timestamp;

/// A tenant: the top of the organization → project → run hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: OffsetDateTime,
}

/// A project within an organization; tokens and runs belong to one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Project {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: OffsetDateTime,
}

/// The outcome of a test run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Passed,
    Failed,
}

impl RunStatus {
    /// The value stored in `test_runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored or submitted status.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "passed" => Some(Self::Passed),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One ingested test run, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct TestRun {
    pub id: Uuid,
    pub project_id: Uuid,
    pub run_id: Uuid,
    pub status: RunStatus,
    pub duration_ms: i64,
    /// The timestamp exactly as the client submitted it.
    pub timestamp: String,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: OffsetDateTime,
}

/// A validated ingest request, before it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRun {
    pub run_id: Uuid,
    pub status: RunStatus,
    pub duration_ms: i64,
    /// As submitted, to be echoed back.
    pub timestamp: String,
    /// The same instant, for queries.
    pub timestamp_at: OffsetDateTime,
}

/// A project token as listed to admins: never the token, never its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct TokenSummary {
    pub id: Uuid,
    /// The token's first 12 characters (`ta_live_1a2b`).
    pub prefix: String,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: OffsetDateTime,
    /// The minute the token last authenticated a request, if ever.
    #[serde(serialize_with = "timestamp::serialize_option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When the token was revoked; `null` while it works.
    #[serde(serialize_with = "timestamp::serialize_option")]
    pub revoked_at: Option<OffsetDateTime>,
}
