//! Column <-> API type conversions shared by both backends.
//!
//! Rows are stored with plain SQL types (`TIMESTAMP` holding UTC, JSON as
//! `TEXT`); the API exposes `DateTime<Utc>` and `serde_json::Value`. These
//! wrappers are the `deserialize_as` targets of the row structs.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::sql_types::{Nullable, Text, Timestamp};

/// Converts an API timestamp to its stored form: naive UTC, truncated to
/// microseconds (PostgreSQL's precision) so both backends round-trip alike.
pub(crate) fn to_db(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc().trunc_subsecs(6)
}

/// The current time in stored precision, as an API value.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn from_db(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

/// A non-null `TIMESTAMP` read as `DateTime<Utc>`.
#[derive(Debug, FromSqlRow)]
pub struct UtcTs(NaiveDateTime);

impl<DB> FromSql<Timestamp, DB> for UtcTs
where
    DB: Backend,
    NaiveDateTime: FromSql<Timestamp, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        NaiveDateTime::from_sql(bytes).map(UtcTs)
    }
}

impl From<UtcTs> for DateTime<Utc> {
    fn from(t: UtcTs) -> Self {
        from_db(t.0)
    }
}

/// A nullable `TIMESTAMP` read as `Option<DateTime<Utc>>`.
#[derive(Debug, FromSqlRow)]
pub struct OptUtcTs(Option<NaiveDateTime>);

impl<DB> FromSql<Nullable<Timestamp>, DB> for OptUtcTs
where
    DB: Backend,
    NaiveDateTime: FromSql<Timestamp, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        NaiveDateTime::from_sql(bytes).map(|t| OptUtcTs(Some(t)))
    }

    fn from_nullable_sql(bytes: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
        match bytes {
            Some(b) => Self::from_sql(b),
            None => Ok(OptUtcTs(None)),
        }
    }
}

impl From<OptUtcTs> for Option<DateTime<Utc>> {
    fn from(t: OptUtcTs) -> Self {
        t.0.map(from_db)
    }
}

/// A non-null JSON `TEXT` column read as `serde_json::Value`.
#[derive(Debug, FromSqlRow)]
pub struct JsonText(serde_json::Value);

impl<DB> FromSql<Text, DB> for JsonText
where
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let s = String::from_sql(bytes)?;
        Ok(JsonText(serde_json::from_str(&s)?))
    }
}

impl From<JsonText> for serde_json::Value {
    fn from(j: JsonText) -> Self {
        j.0
    }
}

/// A nullable JSON `TEXT` column read as `Option<serde_json::Value>`.
#[derive(Debug, FromSqlRow)]
pub struct OptJsonText(Option<serde_json::Value>);

impl<DB> FromSql<Nullable<Text>, DB> for OptJsonText
where
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let s = String::from_sql(bytes)?;
        Ok(OptJsonText(Some(serde_json::from_str(&s)?)))
    }

    fn from_nullable_sql(bytes: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
        match bytes {
            Some(b) => Self::from_sql(b),
            None => Ok(OptJsonText(None)),
        }
    }
}

impl From<OptJsonText> for Option<serde_json::Value> {
    fn from(j: OptJsonText) -> Self {
        j.0
    }
}
