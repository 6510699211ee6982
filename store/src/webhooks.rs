//! Webhook subscriptions and their deliveries: an event is persisted once per subscriber
//! (a delivery row) and retried with back-off until the receiver takes it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::db::{on, Db};
use crate::error::Result;
use crate::schema::{webhook_deliveries as wd, webhooks as wh};
use crate::sqlconv::{now, to_db, JsonText, OptUtcTs, UtcTs};
use crate::DeviceFilter;

/// A subscription as listed (the secret is never shown after creation).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Webhook {
    pub id: String,
    pub name: String,
    pub url: String,
    /// Event types delivered; empty: all.
    pub events: Vec<String>,
    /// The device filters of the subscriber: only events of these devices are delivered.
    pub scopes: Vec<DeviceFilter>,
    pub tenant: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub enabled: bool,
    #[serde(skip_serializing)]
    pub secret: String,
}

#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub name: String,
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
    pub scopes: Vec<DeviceFilter>,
    pub tenant: Option<String>,
    pub created_by: String,
}

type HookTuple = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    chrono::NaiveDateTime,
    bool,
);

fn hook_from(t: HookTuple) -> Webhook {
    Webhook {
        id: t.0,
        name: t.1,
        url: t.2,
        secret: t.3,
        events: serde_json::from_str(&t.4).unwrap_or_default(),
        scopes: serde_json::from_str(&t.5).unwrap_or_default(),
        tenant: t.6,
        created_by: t.7,
        created_at: DateTime::from_naive_utc_and_offset(t.8, Utc),
        enabled: t.9,
    }
}

macro_rules! hook_cols {
    () => {
        (
            wh::id,
            wh::name,
            wh::url,
            wh::secret,
            wh::events,
            wh::scopes,
            wh::tenant,
            wh::created_by,
            wh::created_at,
            wh::enabled,
        )
    };
}

pub(crate) fn create_webhook(db: &mut Db<'_>, n: &NewWebhook) -> Result<Webhook> {
    let id = uuid::Uuid::new_v4().to_string();
    let events = serde_json::to_string(&n.events).unwrap_or_else(|_| "[]".into());
    let scopes = serde_json::to_string(&n.scopes).unwrap_or_else(|_| "[]".into());
    on!(db, |c| diesel::insert_into(wh::table)
        .values((
            wh::id.eq(&id),
            wh::name.eq(&n.name),
            wh::url.eq(&n.url),
            wh::secret.eq(&n.secret),
            wh::events.eq(&events),
            wh::scopes.eq(&scopes),
            wh::tenant.eq(&n.tenant),
            wh::created_by.eq(&n.created_by),
            wh::created_at.eq(to_db(now())),
            wh::enabled.eq(true),
        ))
        .execute(c))?;
    Ok(get_webhook(db, &id)?.unwrap_or_else(|| Webhook {
        id,
        name: n.name.clone(),
        url: n.url.clone(),
        events: n.events.clone(),
        scopes: n.scopes.clone(),
        tenant: n.tenant.clone(),
        created_by: n.created_by.clone(),
        created_at: now(),
        enabled: true,
        secret: n.secret.clone(),
    }))
}

pub(crate) fn list_webhooks(db: &mut Db<'_>) -> Result<Vec<Webhook>> {
    let rows: Vec<HookTuple> = on!(db, |c| wh::table
        .select(hook_cols!())
        .order((wh::created_at.asc(), wh::id.asc()))
        .load(c))?;
    Ok(rows.into_iter().map(hook_from).collect())
}

pub(crate) fn get_webhook(db: &mut Db<'_>, id: &str) -> Result<Option<Webhook>> {
    let row: Option<HookTuple> = on!(db, |c| wh::table
        .find(id)
        .select(hook_cols!())
        .first(c)
        .optional())?;
    Ok(row.map(hook_from))
}

pub(crate) fn delete_webhook(db: &mut Db<'_>, id: &str) -> Result<bool> {
    on!(db, |c| diesel::delete(
        wd::table.filter(wd::webhook_id.eq(id))
    )
    .execute(c))?;
    Ok(on!(db, |c| diesel::delete(wh::table.find(id)).execute(c))? > 0)
}

/// One delivery of an event to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable)]
#[diesel(table_name = wd)]
pub struct DeliveryRow {
    pub id: i64,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    #[diesel(deserialize_as = JsonText)]
    pub payload: Value,
    /// `pending` (to be tried at `next_attempt_at`), `delivered`, `failed` (gave up).
    pub status: String,
    pub attempts: i32,
    #[diesel(deserialize_as = UtcTs)]
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    #[diesel(deserialize_as = UtcTs)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = OptUtcTs)]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Queues one event for each of `hooks` (ids), due now.
pub(crate) fn enqueue(
    db: &mut Db<'_>,
    hooks: &[String],
    event_id: &str,
    event_type: &str,
    payload: &Value,
) -> Result<()> {
    let at = to_db(now());
    let body = payload.to_string();
    for h in hooks {
        on!(db, |c| diesel::insert_into(wd::table)
            .values((
                wd::webhook_id.eq(h),
                wd::event_id.eq(event_id),
                wd::event_type.eq(event_type),
                wd::payload.eq(&body),
                wd::status.eq("pending"),
                wd::attempts.eq(0),
                wd::next_attempt_at.eq(at),
                wd::created_at.eq(at),
            ))
            .execute(c))?;
    }
    Ok(())
}

/// Pending deliveries due at `at`, oldest first.
pub(crate) fn due(db: &mut Db<'_>, at: DateTime<Utc>, limit: i64) -> Result<Vec<DeliveryRow>> {
    Ok(on!(db, |c| wd::table
        .filter(wd::status.eq("pending"))
        .filter(wd::next_attempt_at.le(to_db(at)))
        .order(wd::id.asc())
        .limit(limit)
        .select(DeliveryRow::as_select())
        .load(c))?)
}

/// The outcome of one attempt: delivered, or tried again at `retry_at` (`None`: give up).
pub(crate) fn record_attempt(
    db: &mut Db<'_>,
    id: i64,
    delivered: bool,
    status: Option<i32>,
    error: Option<&str>,
    retry_at: Option<DateTime<Utc>>,
) -> Result<()> {
    let at = to_db(now());
    let (state, next) = match (delivered, retry_at) {
        (true, _) => ("delivered", at),
        (false, Some(t)) => ("pending", to_db(t)),
        (false, None) => ("failed", at),
    };
    on!(db, |c| diesel::update(wd::table.find(id))
        .set((
            wd::status.eq(state),
            wd::attempts.eq(wd::attempts + 1),
            wd::next_attempt_at.eq(next),
            wd::last_status.eq(status),
            wd::last_error.eq(error),
            wd::delivered_at.eq(delivered.then_some(at)),
        ))
        .execute(c))?;
    Ok(())
}

pub(crate) fn deliveries(
    db: &mut Db<'_>,
    hook: &str,
    status: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<DeliveryRow>> {
    Ok(on!(db, |c| {
        let mut q = wd::table
            .filter(wd::webhook_id.eq(hook))
            .order(wd::id.desc())
            .limit(limit.clamp(1, 10_000))
            .select(DeliveryRow::as_select())
            .into_boxed();
        if let Some(s) = status {
            q = q.filter(wd::status.eq(s));
        }
        if let Some(b) = before {
            q = q.filter(wd::id.lt(b));
        }
        q.load(c)
    })?)
}
