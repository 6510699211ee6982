//! Prepared-statement caching for upserts and updates.
//!
//! diesel never caches the prepared statement of an `UPDATE` or of an
//! `INSERT … ON CONFLICT DO UPDATE`, because a changeset's SQL can vary with
//! its values (`None` fields are skipped). On the hot path that meant a fresh
//! `sqlite3_prepare` for every parameter of every Inform — half the writer's
//! time — or an extra round trip per statement on PostgreSQL.
//!
//! [`Cached`] restores caching safely: it reports no static query id, so
//! diesel keys its cache by the generated SQL text (and bind types) instead
//! of by Rust type. Every distinct statement text gets its own entry, and
//! texts stay few because values are always bound, never inlined. Do not
//! wrap queries whose SQL grows with their input (`eq_any` over a
//! variable-length list, multi-row `VALUES`): each length would be cached.
//!
//! This overrides `QueryFragment::is_safe_to_cache_prepared`, which diesel
//! documents only for backend implementors; `tests::upserts_are_cached`
//! fails if a diesel upgrade stops honouring it.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::Bool;
use diesel::{QueryResult, RunQueryDsl};

/// A query whose prepared statement may be cached by its SQL text.
///
/// Use `.get_result()`/`.load()` for statements with `RETURNING`, and
/// [`Cached::run`] (not `.execute()`) for statements without.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cached<Q>(pub(crate) Q);

impl<Q> QueryId for Cached<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, DB> QueryFragment<DB> for Cached<Q>
where
    DB: Backend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: Query> Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Cached<Q> {}

impl<Q> Cached<Q> {
    /// Runs a statement that returns no rows.
    ///
    /// `execute` would hand the connection `&Self`, and diesel's blanket
    /// `QueryFragment for &T` does not forward the caching override; the
    /// load path takes the query by value, so this goes through it.
    pub(crate) fn run<'q, Conn>(self, conn: &mut Conn) -> QueryResult<()>
    where
        NoRows<Q>: LoadQuery<'q, Conn, bool>,
    {
        NoRows(self.0).load::<bool>(conn).map(drop)
    }
}

/// A rowless statement typed as a query of `Bool` rows (it yields none), so
/// that it can be run through the load path. See [`Cached::run`].
#[derive(Debug)]
pub(crate) struct NoRows<Q>(Q);

impl<Q> QueryId for NoRows<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, DB> QueryFragment<DB> for NoRows<Q>
where
    DB: Backend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> Query for NoRows<Q> {
    type SqlType = Bool;
}

impl<Q, Conn> RunQueryDsl<Conn> for NoRows<Q> {}

/// Test instrumentation: records the SQL of every statement diesel prepares (a cache miss).
#[cfg(test)]
#[derive(Default, Clone)]
pub(crate) struct Prepares(pub(crate) std::sync::Arc<std::sync::Mutex<Vec<String>>>);

#[cfg(test)]
impl diesel::connection::Instrumentation for Prepares {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        if let diesel::connection::InstrumentationEvent::CacheQuery { sql, .. } = event {
            self.0.lock().unwrap().push(sql.to_string());
        }
    }
}

#[cfg(test)]
mod tests {

    use diesel::prelude::*;
    use diesel::upsert::excluded;

    use super::{Cached, Prepares};

    diesel::table! {
        kv (k) {
            k -> Text,
            v -> Text,
        }
    }

    #[test]
    fn upserts_are_cached() {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        diesel::sql_query("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
            .execute(&mut c)
            .unwrap();
        let cached = Prepares::default();
        c.set_instrumentation(cached.clone());
        for i in 0..3 {
            let v = i.to_string();
            Cached(
                diesel::insert_into(kv::table)
                    .values((kv::k.eq("a"), kv::v.eq(&v)))
                    .on_conflict(kv::k)
                    .do_update()
                    .set(kv::v.eq(excluded(kv::v))),
            )
            .run(&mut c)
            .unwrap();
            Cached(diesel::update(kv::table.find("a")).set(kv::v.eq(&v)))
                .run(&mut c)
                .unwrap();
        }
        // Prepared (and cached) once each, then reused.
        let prepared = cached.0.lock().unwrap().clone();
        assert_eq!(prepared.len(), 2, "{prepared:?}");
        let v: String = kv::table.select(kv::v).first(&mut c).unwrap();
        assert_eq!(v, "2");
    }
}
