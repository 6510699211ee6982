//! Bulk-data storage (IPDR records and sessions, HTTP bulk-data samples),
//! run against SQLite (temp dir) and a throwaway PostgreSQL cluster
//! (`store::testpg`; skipped with a SKIP line when PostgreSQL is not
//! installed).

use std::collections::HashSet;

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::json;
use store::testpg::TestPg;
use store::*;

// ---------------------------------------------------------------------------
// Harness

struct Ctx {
    store: Store,
    url: String,
    kind: Backend,
    dir: Option<tempfile::TempDir>,
}

impl Ctx {
    async fn sqlite() -> Ctx {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("keelson.db").display().to_string();
        let store = Store::open(&url, StoreOptions::default()).await.unwrap();
        Ctx {
            store,
            url,
            kind: Backend::Sqlite,
            dir: Some(dir),
        }
    }

    async fn postgres() -> Option<Ctx> {
        let pg = TestPg::shared()?;
        let url = pg.fresh_database();
        let opts = StoreOptions {
            pool_size: Some(4),
            index_safety_lag: std::time::Duration::ZERO,
            ..StoreOptions::default()
        };
        let store = Store::open(&url, opts).await.unwrap();
        Some(Ctx {
            store,
            url,
            kind: Backend::Postgres,
            dir: None,
        })
    }

    fn another_url(&self) -> String {
        match self.kind {
            Backend::Sqlite => self
                .dir
                .as_ref()
                .unwrap()
                .path()
                .join("other.db")
                .display()
                .to_string(),
            Backend::Postgres => TestPg::shared().unwrap().fresh_database(),
        }
    }

    /// Runs SQL on a fresh connection (not through the store).
    fn exec_sql(&self, url: &str, sql: &str) {
        match self.kind {
            Backend::Sqlite => {
                let mut c = diesel::SqliteConnection::establish(url).unwrap();
                // A store just dropped may still be closing its connections.
                c.batch_execute("PRAGMA busy_timeout = 10000;").unwrap();
                c.batch_execute(sql).unwrap()
            }
            Backend::Postgres => diesel::PgConnection::establish(url)
                .unwrap()
                .batch_execute(sql)
                .unwrap(),
        }
    }
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let ctx = super::Ctx::sqlite().await;
                    super::$case(&ctx).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(ctx) = super::Ctx::postgres().await else { return };
                    super::$case(&ctx).await;
                }
            )*
        }
    };
}

suite!(
    migrations_apply_and_revert,
    commit_and_query,
    retransmission_stores_nothing_new,
    samples_only_for_inserted_records,
    concurrent_commits,
    sessions_and_exporters,
    resume_after_restart,
    http_samples_and_queries,
    device_mapping,
    invalid_requests,
    report_index_and_retention,
);

const EXPORTER: &str = "192.0.2.7:4737";
const DOC: &str = "6f1e3c1a-9a4b-4c39-8f3e-2d1f0a9b7c55";

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 22, 10, 0, 0).unwrap() + Duration::seconds(secs)
}

/// A TR-232 BulkDataReport record with `n` samples.
fn record(session_id: i32, doc: &str, seq: i64, device: Option<&str>, n: usize) -> IpdrRecordIn {
    let at = t(seq);
    IpdrRecordIn {
        session_id,
        document_id: doc.into(),
        sequence: seq,
        template_id: 3000,
        received_at: now(),
        fields: serde_json::Value::Null,
        device_id: device.map(str::to_string),
        report: Some(ReportIn {
            sampled_at: at,
            suspect: false,
            pairs: (0..n)
                .map(|k| (format!("Device.X.{k}.Value"), format!("{seq}-{k}")))
                .collect(),
        }),
    }
}

/// A record of another template (e.g. DOCSIS SAMIS): kept with its fields.
fn generic(session_id: i32, doc: &str, seq: i64, device: Option<&str>) -> IpdrRecordIn {
    IpdrRecordIn {
        session_id,
        document_id: doc.into(),
        sequence: seq,
        template_id: 4000,
        received_at: now(),
        fields: json!({"CmtsHostName": "cmts-1", "ServiceOctetsPassed": seq * 1000}),
        device_id: device.map(str::to_string),
        report: None,
    }
}

/// Distinct reports the sample query sees.
async fn reports(s: &Store) -> usize {
    all_samples(s, None)
        .await
        .iter()
        .map(|r| r.report_id)
        .collect::<HashSet<_>>()
        .len()
}

fn batch(records: Vec<IpdrRecordIn>) -> IpdrBatch {
    IpdrBatch {
        records,
        ..IpdrBatch::new(EXPORTER)
    }
}

async fn all_samples(s: &Store, device: Option<&str>) -> Vec<SampleRow> {
    s.query_samples(SampleQuery {
        device_id: device.map(str::to_string),
        limit: 10_000,
        ..SampleQuery::default()
    })
    .await
    .unwrap()
}

async fn session(s: &Store, exporter: &str, session_id: i32, doc: &str) -> IpdrSessionRow {
    s.list_ipdr_sessions(Some(exporter))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.session_id == session_id && r.document_id == doc)
        .expect("session row")
}

// ---------------------------------------------------------------------------
// Cases

async fn migrations_apply_and_revert(ctx: &Ctx) {
    assert!(Store::migrate(&ctx.url).await.unwrap().is_empty());
    let other = ctx.another_url();
    let applied = Store::migrate(&other).await.unwrap();
    assert_eq!(
        applied,
        [
            "2025-11-21-000000_init",
            "2025-11-22-000000_bulkdata",
            "2025-11-23-000000_bulk_reports",
            "2026-12-03-000000_leases_and_secrets",
            "2026-12-04-000000_access",
        ]
    );
    macro_rules! sql {
        ($flavour:literal, $name:literal) => {
            include_str!(concat!("../../migrations/", $flavour, "/", $name))
        };
    }
    let (up5, down5) = match ctx.kind {
        Backend::Sqlite => (
            sql!("sqlite", "2026-12-04-000000_access/up.sql"),
            sql!("sqlite", "2026-12-04-000000_access/down.sql"),
        ),
        Backend::Postgres => (
            sql!("postgres", "2026-12-04-000000_access/up.sql"),
            sql!("postgres", "2026-12-04-000000_access/down.sql"),
        ),
    };
    // Operator access: down and up again leave a usable schema.
    ctx.exec_sql(&other, down5);
    ctx.exec_sql(&other, up5);
    let (up2, down2, up3, down3, up4, down4) = match ctx.kind {
        Backend::Sqlite => (
            sql!("sqlite", "2025-11-22-000000_bulkdata/up.sql"),
            sql!("sqlite", "2025-11-22-000000_bulkdata/down.sql"),
            sql!("sqlite", "2025-11-23-000000_bulk_reports/up.sql"),
            sql!("sqlite", "2025-11-23-000000_bulk_reports/down.sql"),
            sql!("sqlite", "2026-12-03-000000_leases_and_secrets/up.sql"),
            sql!("sqlite", "2026-12-03-000000_leases_and_secrets/down.sql"),
        ),
        Backend::Postgres => (
            sql!("postgres", "2025-11-22-000000_bulkdata/up.sql"),
            sql!("postgres", "2025-11-22-000000_bulkdata/down.sql"),
            sql!("postgres", "2025-11-23-000000_bulk_reports/up.sql"),
            sql!("postgres", "2025-11-23-000000_bulk_reports/down.sql"),
            sql!("postgres", "2026-12-03-000000_leases_and_secrets/up.sql"),
            sql!("postgres", "2026-12-03-000000_leases_and_secrets/down.sql"),
        ),
    };
    // Leases and sealed secrets: down and up again leave a usable schema.
    ctx.exec_sql(&other, down5);
    ctx.exec_sql(&other, down4);
    ctx.exec_sql(&other, up4);
    ctx.exec_sql(&other, up5);
    // Samples of the first layout are carried over, and back.
    let s = Store::open(&other, StoreOptions::default()).await.unwrap();
    s.insert_samples(
        Some("dev-m".into()),
        SOURCE_HTTP_JSON,
        Some("req-m".into()),
        vec![
            SampleIn::new("Device.A", "1", t(0)),
            SampleIn::new("Device.B", "2", t(0)),
            SampleIn::new("Device.A", "3", t(5)),
        ],
    )
    .await
    .unwrap();
    drop(s);
    ctx.exec_sql(&other, down3);
    ctx.exec_sql(&other, up3);
    let s = Store::open(&other, StoreOptions::default()).await.unwrap();
    let mut got: Vec<(String, String, DateTime<Utc>, Option<String>)> =
        all_samples(&s, Some("dev-m"))
            .await
            .into_iter()
            .map(|r| (r.path, r.value, r.sampled_at, r.source_ref))
            .collect();
    // Newest first; the order of equal times is the reports' (one per sample now).
    got.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let m = Some("req-m".to_string());
    assert_eq!(
        got,
        [
            ("Device.A".into(), "3".into(), t(5), m.clone()),
            ("Device.A".into(), "1".into(), t(0), m.clone()),
            ("Device.B".into(), "2".into(), t(0), m.clone()),
        ]
    );
    drop(s);
    // down.sql really undoes up.sql (and up.sql applies again after it).
    ctx.exec_sql(&other, down3);
    ctx.exec_sql(&other, down2);
    ctx.exec_sql(&other, up2);
    ctx.exec_sql(&other, up3);
    let s = Store::open(&other, StoreOptions::default()).await.unwrap();
    assert!(s.list_ipdr_exporters().await.unwrap().is_empty());
    assert!(all_samples(&s, None).await.is_empty());
}

async fn commit_and_query(ctx: &Ctx) {
    let s = &ctx.store;
    let dev = canonical_device_id("00D09E", "IGD", "S1");
    let mut b = batch(vec![
        record(65, DOC, 0, Some(&dev), 3),
        record(65, DOC, 1, Some(&dev), 3),
        record(65, DOC, 2, None, 2),
    ]);
    b.session_updates
        .push(IpdrSessionUpdate::Start(IpdrSessionIn {
            session_id: 65,
            document_id: DOC.into(),
            config_id: 7,
            template: json!({"templates": [{"id": 3000}]}),
            started_at: t(-1),
        }));
    let out = s.ipdr_commit(b).await.unwrap();
    assert_eq!(
        out,
        IpdrCommitOutcome {
            inserted: 3,
            duplicates: 0,
            samples: 8
        }
    );

    let ex = s.list_ipdr_exporters().await.unwrap();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].id, EXPORTER);
    assert_eq!(ex[0].records_total, 3);
    assert_eq!(ex[0].direction, "unknown", "created by the commit");

    let sess = session(s, EXPORTER, 65, DOC).await;
    assert_eq!(sess.config_id, 7);
    assert_eq!(sess.template["templates"][0]["id"], 3000);
    assert_eq!(sess.started_at, t(-1));
    assert_eq!(sess.stopped_at, None);
    assert_eq!(sess.records, 3);
    assert_eq!(sess.last_sequence, Some(2));
    assert_eq!(
        s.last_ipdr_sequence(EXPORTER, 65, DOC).await.unwrap(),
        Some(2)
    );
    assert_eq!(s.last_ipdr_sequence(EXPORTER, 66, DOC).await.unwrap(), None);
    assert_eq!(s.last_ipdr_sequence("nobody", 65, DOC).await.unwrap(), None);

    // Reports are not `ipdr_records` rows; records of other templates are.
    assert!(s
        .query_ipdr_records(None, None, 10)
        .await
        .unwrap()
        .is_empty());
    let out = s
        .ipdr_commit(batch(vec![
            generic(65, DOC, 10, Some(&dev)),
            generic(65, DOC, 11, None),
            generic(65, DOC, 10, None),
        ]))
        .await
        .unwrap();
    assert_eq!((out.inserted, out.duplicates, out.samples), (2, 1, 0));
    let recs = s
        .query_ipdr_records(Some(EXPORTER), Some(65), 10)
        .await
        .unwrap();
    let seqs: Vec<i64> = recs.iter().map(|r| r.sequence).collect();
    assert_eq!(seqs, [11, 10], "newest first");
    assert_eq!(recs[1].fields["CmtsHostName"], "cmts-1");
    assert_eq!(recs[1].fields["ServiceOctetsPassed"], 10_000);
    assert_eq!(recs[1].device_id.as_deref(), Some(dev.as_str()));
    assert_eq!(recs[0].device_id, None);
    assert_eq!(recs[0].template_id, 4000);
    assert_eq!(recs[0].document_id, DOC);
    assert!(s
        .query_ipdr_records(Some(EXPORTER), Some(66), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.query_ipdr_records(None, None, 1).await.unwrap().len(), 1);
    assert_eq!(
        s.last_ipdr_sequence(EXPORTER, 65, DOC).await.unwrap(),
        Some(11)
    );

    // Samples carry the device, the time, the source and their record.
    let mine = all_samples(s, Some(&dev)).await;
    assert_eq!(mine.len(), 6);
    assert!(mine
        .iter()
        .all(|r| r.source == SOURCE_IPDR && r.source_ref.is_none()));
    assert_eq!(mine[0].sampled_at, t(1), "newest first");
    assert_eq!(mine[0].report_id, mine[1].report_id, "a report's pairs");
    assert_eq!(mine[0].path, "Device.X.0.Value", "in report order");
    let v: HashSet<&str> = mine.iter().map(|r| r.value.as_str()).collect();
    assert!(v.contains("0-2") && v.contains("1-0"));
    let everything = all_samples(s, None).await;
    assert_eq!(everything.len(), 8);
    let anonymous: Vec<_> = everything
        .iter()
        .filter(|r| r.device_id.is_none())
        .collect();
    assert_eq!(anonymous.len(), 2);
    assert!(anonymous
        .iter()
        .all(|r| r.report_id == anonymous[0].report_id));
}

async fn retransmission_stores_nothing_new(ctx: &Ctx) {
    let s = &ctx.store;
    let dev = "00D09E-IGD-S1";
    let records: Vec<_> = (0..5).map(|q| record(65, DOC, q, Some(dev), 4)).collect();
    let out = s.ipdr_commit(batch(records.clone())).await.unwrap();
    assert_eq!((out.inserted, out.duplicates, out.samples), (5, 0, 20));

    // The exporter resends the whole window (e.g. after a failover).
    let out = s.ipdr_commit(batch(records.clone())).await.unwrap();
    assert_eq!(
        out,
        IpdrCommitOutcome {
            inserted: 0,
            duplicates: 5,
            samples: 0
        }
    );
    // An overlapping window: 3 and 4 again, 5 and 6 new; 6 twice in the batch.
    let overlap = vec![
        record(65, DOC, 3, Some(dev), 4),
        record(65, DOC, 4, Some(dev), 4),
        record(65, DOC, 5, Some(dev), 4),
        record(65, DOC, 6, Some(dev), 4),
        record(65, DOC, 6, Some(dev), 4),
    ];
    let out = s.ipdr_commit(batch(overlap)).await.unwrap();
    assert_eq!((out.inserted, out.duplicates, out.samples), (2, 3, 8));

    assert_eq!(all_samples(s, Some(dev)).await.len(), 7 * 4);
    assert_eq!(reports(s).await, 7);
    let sess = session(s, EXPORTER, 65, DOC).await;
    assert_eq!((sess.records, sess.last_sequence), (7, Some(6)));
    assert_eq!(s.list_ipdr_exporters().await.unwrap()[0].records_total, 7);

    // The same DSN in another document, session or exporter is a new record.
    let other_doc = "00000000-0000-8000-8000-000000000001";
    let mut b = batch(vec![
        record(65, other_doc, 0, Some(dev), 1),
        record(66, DOC, 0, Some(dev), 1),
    ]);
    b.exporter_id = "cmts-2".into();
    let out = s.ipdr_commit(b).await.unwrap();
    assert_eq!((out.inserted, out.duplicates), (2, 0));
    let out = s
        .ipdr_commit(batch(vec![record(65, other_doc, 0, Some(dev), 1)]))
        .await
        .unwrap();
    assert_eq!((out.inserted, out.duplicates), (1, 0));
    assert_eq!(reports(s).await, 10);
}

async fn samples_only_for_inserted_records(ctx: &Ctx) {
    let s = &ctx.store;
    s.ipdr_commit(batch(vec![record(65, DOC, 0, Some("dev-a"), 2)]))
        .await
        .unwrap();
    // A resend of DSN 0 whose content differs (it must not be stored) next
    // to a new record.
    let mut resent = record(65, DOC, 0, Some("dev-b"), 3);
    resent.report.as_mut().unwrap().pairs[0].1 = "changed".into();
    let out = s
        .ipdr_commit(batch(vec![resent, record(65, DOC, 1, Some("dev-b"), 3)]))
        .await
        .unwrap();
    assert_eq!((out.inserted, out.duplicates, out.samples), (1, 1, 3));
    let a = all_samples(s, Some("dev-a")).await;
    let b = all_samples(s, Some("dev-b")).await;
    assert_eq!(a.len(), 2);
    assert_eq!(b.len(), 3);
    assert!(b.iter().all(|r| r.value.starts_with("1-")), "{b:?}");
    assert!(
        a.iter().all(|r| r.value.starts_with("0-")),
        "original kept: {a:?}"
    );
    // An empty batch is a no-op; a batch of only duplicates writes nothing.
    let out = s.ipdr_commit(IpdrBatch::new(EXPORTER)).await.unwrap();
    assert_eq!(out, IpdrCommitOutcome::default());
}

async fn concurrent_commits(ctx: &Ctx) {
    let s = &ctx.store;
    // 20 concurrent batches over 5 sessions; batches i and i + 5, i + 10,
    // i + 15 carry the same 50 records (as four resends would).
    let mut handles = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let session = 65 + (i % 5);
            let dev = format!("00D09E-IGD-C{}", i % 5);
            let records = (0..50)
                .map(|q| record(session, DOC, q, Some(&dev), 5))
                .collect();
            s.ipdr_commit(batch(records)).await.unwrap()
        }));
    }
    let mut inserted = 0;
    let mut duplicates = 0;
    let mut samples = 0;
    for h in handles {
        let out = h.await.unwrap();
        assert!(
            out.inserted == 50 || out.inserted == 0,
            "{out:?}: a batch is all or nothing"
        );
        inserted += out.inserted;
        duplicates += out.duplicates;
        samples += out.samples;
    }
    assert_eq!((inserted, duplicates, samples), (250, 750, 1250));
    assert_eq!(all_samples(s, None).await.len(), 1250);
    for k in 0..5 {
        let sess = session(s, EXPORTER, 65 + k, DOC).await;
        assert_eq!((sess.records, sess.last_sequence), (50, Some(49)));
        assert_eq!(
            all_samples(s, Some(&format!("00D09E-IGD-C{k}")))
                .await
                .len(),
            250
        );
    }
    assert_eq!(s.list_ipdr_exporters().await.unwrap()[0].records_total, 250);
}

async fn sessions_and_exporters(ctx: &Ctx) {
    let s = &ctx.store;
    let e = s
        .upsert_ipdr_exporter(IpdrExporterIn {
            id: EXPORTER.into(),
            direction: "inbound".into(),
            state: "connected".into(),
            last_connected_at: Some(t(0)),
            last_error: None,
        })
        .await
        .unwrap();
    assert_eq!(e.records_total, 0);
    assert_eq!(e.last_connected_at, Some(t(0)));

    let start = IpdrSessionIn {
        session_id: 65,
        document_id: DOC.into(),
        config_id: 1,
        template: json!({"v": 1}),
        started_at: t(1),
    };
    let row = s
        .upsert_ipdr_session(EXPORTER, start.clone())
        .await
        .unwrap();
    assert_eq!(
        (row.config_id, row.records, row.last_sequence),
        (1, 0, None)
    );
    s.ipdr_commit(batch(vec![
        record(65, DOC, 0, None, 1),
        record(65, DOC, 1, None, 1),
    ]))
    .await
    .unwrap();

    // Stop, then recovery with the same document: the row continues.
    assert!(s.stop_ipdr_session(EXPORTER, 65, DOC, t(5)).await.unwrap());
    assert!(!s
        .stop_ipdr_session(EXPORTER, 65, "no-such-doc", t(5))
        .await
        .unwrap());
    assert_eq!(session(s, EXPORTER, 65, DOC).await.stopped_at, Some(t(5)));
    let row = s
        .upsert_ipdr_session(
            EXPORTER,
            IpdrSessionIn {
                config_id: 2,
                template: json!({"v": 2}),
                started_at: t(9),
                ..start.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(row.config_id, 2);
    assert_eq!(row.template, json!({"v": 2}));
    assert_eq!(row.started_at, t(1), "first start kept");
    assert_eq!(row.stopped_at, None);
    assert_eq!((row.records, row.last_sequence), (2, Some(1)));

    // Stop in the same job as the last records.
    let mut b = batch(vec![record(65, DOC, 2, None, 1)]);
    b.session_updates.push(IpdrSessionUpdate::Stop {
        session_id: 65,
        document_id: DOC.into(),
        stopped_at: t(20),
    });
    s.ipdr_commit(b).await.unwrap();
    let row = session(s, EXPORTER, 65, DOC).await;
    assert_eq!(
        (row.records, row.last_sequence, row.stopped_at),
        (3, Some(2), Some(t(20)))
    );

    // Another exporter (whose row the session creates) and an IPDR/XML
    // document that had no session start.
    s.upsert_ipdr_session(
        "file:reports",
        IpdrSessionIn {
            started_at: t(30),
            ..start
        },
    )
    .await
    .unwrap();
    let mut xml = IpdrBatch::new("file:reports");
    xml.source = SOURCE_IPDR_XML.into();
    xml.records
        .push(record(0, "docid-xml-1", 1, Some("00D09E-IGD-S1"), 2));
    s.ipdr_commit(xml).await.unwrap();
    let xml_session = session(s, "file:reports", 0, "docid-xml-1").await;
    assert_eq!(
        (xml_session.records, xml_session.last_sequence),
        (1, Some(1))
    );
    assert_eq!(xml_session.config_id, 0);
    assert_eq!(xml_session.template, serde_json::Value::Null);
    assert!(all_samples(s, Some("00D09E-IGD-S1"))
        .await
        .iter()
        .all(|r| r.source == SOURCE_IPDR_XML));

    let all = s.list_ipdr_sessions(None).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].exporter_id, "file:reports", "newest start first");
    assert_eq!(s.list_ipdr_sessions(Some(EXPORTER)).await.unwrap().len(), 1);

    // Exporter updates keep the counter, and `None` keeps a field.
    let e = s
        .upsert_ipdr_exporter(IpdrExporterIn {
            id: EXPORTER.into(),
            direction: "inbound".into(),
            state: "disconnected".into(),
            last_connected_at: None,
            last_error: Some("keep-alive expired".into()),
        })
        .await
        .unwrap();
    assert_eq!(e.records_total, 3);
    assert_eq!(e.last_connected_at, Some(t(0)));
    assert_eq!(e.last_error.as_deref(), Some("keep-alive expired"));
    let e = s
        .upsert_ipdr_exporter(IpdrExporterIn {
            id: EXPORTER.into(),
            direction: "inbound".into(),
            state: "connected".into(),
            last_connected_at: Some(t(40)),
            last_error: None,
        })
        .await
        .unwrap();
    assert_eq!(e.state, "connected");
    assert_eq!(e.last_connected_at, Some(t(40)));
    assert_eq!(e.last_error.as_deref(), Some("keep-alive expired"));
    let ids: Vec<String> = s
        .list_ipdr_exporters()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, [EXPORTER, "file:reports"]);
}

async fn resume_after_restart(ctx: &Ctx) {
    let records: Vec<_> = (0..10).map(|q| record(65, DOC, q, None, 1)).collect();
    ctx.store.ipdr_commit(batch(records)).await.unwrap();
    // A new process: the store is opened again on the same database.
    let s = Store::open(&ctx.url, StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        s.last_ipdr_sequence(EXPORTER, 65, DOC).await.unwrap(),
        Some(9)
    );
    // The exporter resends from DSN 5; only 10 and 11 are new.
    let resent: Vec<_> = (5..12).map(|q| record(65, DOC, q, None, 1)).collect();
    let out = s.ipdr_commit(batch(resent)).await.unwrap();
    assert_eq!((out.inserted, out.duplicates), (2, 5));
    assert_eq!(
        s.last_ipdr_sequence(EXPORTER, 65, DOC).await.unwrap(),
        Some(11)
    );
}

async fn http_samples_and_queries(ctx: &Ctx) {
    let s = &ctx.store;
    let dev = canonical_device_id("00D09E", "IGD", "H1");
    // Two reports (a retained failed one and the current one), as one POST.
    let mut samples = Vec::new();
    for (k, at) in [t(0), t(60)].into_iter().enumerate() {
        samples.push(SampleIn::new(
            "Device.WiFi.Radio.1.Stats.BytesSent",
            format!("{}", 100 + k),
            at,
        ));
        samples.push(SampleIn::new(
            "Device.WiFi.Radio.2.Stats.BytesSent",
            format!("{}", 200 + k),
            at,
        ));
        samples.push(SampleIn::new("Device.WiFiX.Other", "x", at));
        samples.push(SampleIn::new("Device.IP.Interface.1.Status", "Up", at));
    }
    let n = s
        .insert_samples(
            Some(dev.clone()),
            SOURCE_HTTP_JSON,
            Some("req-1".into()),
            samples,
        )
        .await
        .unwrap();
    assert_eq!(n, 8);
    // Another device, and a report of an unknown identity.
    s.insert_samples(
        Some("00D09E-IGD-H2".into()),
        SOURCE_HTTP_CSV,
        None,
        vec![SampleIn::new(
            "Device.WiFi.Radio.1.Stats.BytesSent",
            "7",
            t(30),
        )],
    )
    .await
    .unwrap();
    s.insert_samples(
        None,
        SOURCE_HTTP_CSV,
        None,
        vec![SampleIn::new(
            "Device.WiFi.Radio.1.Stats.BytesSent",
            "8",
            t(31),
        )],
    )
    .await
    .unwrap();
    assert_eq!(
        s.insert_samples(None, SOURCE_HTTP_CSV, None, vec![])
            .await
            .unwrap(),
        0
    );

    let q =
        |path: Option<&str>, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| SampleQuery {
            device_id: Some(dev.clone()),
            path: path.map(str::to_string),
            from,
            to,
            limit: 100,
            offset: 0,
        };
    // Exact path, newest first.
    let rows = s
        .query_samples(q(Some("Device.WiFi.Radio.1.Stats.BytesSent"), None, None))
        .await
        .unwrap();
    let got: Vec<(&str, DateTime<Utc>)> = rows
        .iter()
        .map(|r| (r.value.as_str(), r.sampled_at))
        .collect();
    assert_eq!(got, [("101", t(60)), ("100", t(0))]);
    assert_eq!(rows[0].source, SOURCE_HTTP_JSON);
    assert_eq!(rows[0].source_ref.as_deref(), Some("req-1"));
    assert!(!rows[0].suspect);
    // Prefix: the subtree only (not "Device.WiFiX.").
    let rows = s
        .query_samples(q(Some("Device.WiFi."), None, None))
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.path.starts_with("Device.WiFi.")));
    assert_eq!(rows[0].sampled_at, t(60));
    assert_eq!(rows[3].sampled_at, t(0));
    // A path without a trailing dot is exact, not a prefix.
    assert!(s
        .query_samples(q(Some("Device.WiFi"), None, None))
        .await
        .unwrap()
        .is_empty());
    // Time range [from, to).
    let rows = s.query_samples(q(None, Some(t(60)), None)).await.unwrap();
    assert_eq!(rows.len(), 4);
    let rows = s.query_samples(q(None, None, Some(t(60)))).await.unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.sampled_at == t(0)));
    let rows = s
        .query_samples(q(Some("Device.WiFi."), Some(t(1)), Some(t(61))))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    // Paging.
    let page = s
        .query_samples(SampleQuery {
            limit: 3,
            offset: 3,
            ..q(None, None, None)
        })
        .await
        .unwrap();
    let all = s.query_samples(q(None, None, None)).await.unwrap();
    assert_eq!(all.len(), 8);
    assert_eq!(page, all[3..6].to_vec());
    // Across devices (path filter, no device).
    let rows = s
        .query_samples(SampleQuery {
            path: Some("Device.WiFi.Radio.1.Stats.BytesSent".into()),
            from: Some(t(1)),
            ..SampleQuery::default()
        })
        .await
        .unwrap();
    let values: Vec<&str> = rows.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(values, ["101", "8", "7"]);
    assert_eq!(rows[1].device_id, None);
}

async fn device_mapping(ctx: &Ctx) {
    let s = &ctx.store;
    assert_eq!(canonical_device_id("00d09e", "IGD", "S1"), "00D09E-IGD-S1");
    assert_eq!(canonical_device_id("00D09E", "", "S1"), "00D09E-S1");
    assert_eq!(
        canonical_device_id("00D09E", "Home Gateway", "a-b.c/é"),
        "00D09E-Home%20Gateway-a%2Db%2Ec%2F%C3%A9"
    );
    assert_eq!(
        canonical_device_id("00D09E", "X_1", "Y_2"),
        "00D09E-X_1-Y_2"
    );

    let id = canonical_device_id("00D09E", "Home Gateway", "SN-1");
    assert_eq!(
        s.device_exists_by_identity("00D09E", "Home Gateway", "SN-1")
            .await
            .unwrap(),
        None
    );
    s.record_inform(inform(&id, "00D09E", "Home Gateway", "SN-1"))
        .await
        .unwrap();
    let bare = canonical_device_id("00D09E", "", "SN2");
    s.record_inform(inform(&bare, "00D09E", "", "SN2"))
        .await
        .unwrap();

    assert_eq!(
        s.device_exists_by_identity("00d09e", "Home Gateway", "SN-1")
            .await
            .unwrap(),
        Some(id.clone()),
        "the OUI is case-insensitive"
    );
    assert_eq!(
        s.device_exists_by_identity("00D09E", "", "SN2")
            .await
            .unwrap(),
        Some(bare)
    );
    assert_eq!(
        s.device_exists_by_identity("00D09E", "Home Gateway", "sn-1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.device_exists_by_identity("00D09E", "Other", "SN-1")
            .await
            .unwrap(),
        None
    );

    // Samples stored for an identity before its first Inform join up by id.
    let later = canonical_device_id("00D09E", "IGD", "LATE");
    s.ipdr_commit(batch(vec![record(65, DOC, 0, Some(&later), 2)]))
        .await
        .unwrap();
    assert_eq!(
        s.device_exists_by_identity("00D09E", "IGD", "LATE")
            .await
            .unwrap(),
        None
    );
    s.record_inform(inform(&later, "00D09E", "IGD", "LATE"))
        .await
        .unwrap();
    assert_eq!(
        s.device_exists_by_identity("00D09E", "IGD", "LATE")
            .await
            .unwrap(),
        Some(later.clone())
    );
    assert_eq!(all_samples(s, Some(&later)).await.len(), 2);
}

fn inform(id: &str, oui: &str, pc: &str, sn: &str) -> InformRecord {
    InformRecord {
        device_id: id.into(),
        oui: oui.into(),
        product_class: pc.into(),
        serial_number: sn.into(),
        manufacturer: "Acme".into(),
        root_object: "Device.".into(),
        software_version: None,
        hardware_version: None,
        connection_request_url: None,
        udp_connection_request_address: None,
        parameter_key: None,
        cwmp_ns: "urn:dslforum-org:cwmp-1-4".into(),
        cwmp_version: "1.4".into(),
        remote_addr: None,
        current_time: None,
        retry_count: 0,
        received_at: now(),
        session_id: None,
        events: vec![InformEvent {
            code: "1 BOOT".into(),
            command_key: String::new(),
        }],
        params: vec![],
        bootstrap: false,
    }
}

async fn invalid_requests(ctx: &Ctx) {
    let s = &ctx.store;
    let e = s
        .insert_samples(None, "mqtt", None, vec![SampleIn::new("a", "b", t(0))])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
    let mut b = batch(vec![record(65, DOC, 0, None, 1)]);
    b.source = SOURCE_HTTP_JSON.replace("json", "xml");
    assert!(matches!(
        s.ipdr_commit(b).await,
        Err(StoreError::Invalid(_))
    ));
    let b = IpdrBatch {
        records: vec![record(65, DOC, 0, None, 1)],
        ..IpdrBatch::new("")
    };
    assert!(matches!(
        s.ipdr_commit(b).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(all_samples(s, None).await.is_empty());
    assert!(s.list_ipdr_exporters().await.unwrap().is_empty());

    // NUL (which PostgreSQL text cannot hold) becomes '.', as in TR-232.
    let n = s
        .insert_samples(
            Some("dev\0x".into()),
            SOURCE_HTTP_JSON,
            Some("r\0".into()),
            vec![SampleIn::new("Device.A\0", "v\0v", t(0))],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let rows = all_samples(s, Some("dev.x")).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].path.as_str(),
            rows[0].value.as_str(),
            rows[0].source_ref.as_deref()
        ),
        ("Device.A.", "v.v", Some("r."))
    );
    let mut r = record(65, "doc\0", 0, Some("dev\0y"), 1);
    r.report.as_mut().unwrap().pairs[0].1 = "\0".into();
    let mut g = generic(65, "doc\0", 1, None);
    g.fields = json!({"raw": "a\0b"});
    let out = s
        .ipdr_commit(IpdrBatch {
            records: vec![r, g],
            ..IpdrBatch::new("exp\0")
        })
        .await
        .unwrap();
    assert_eq!(out.inserted, 2);
    assert_eq!(
        s.last_ipdr_sequence("exp\0", 65, "doc\0").await.unwrap(),
        Some(1)
    );
    let rec = &s.query_ipdr_records(Some("exp."), None, 1).await.unwrap()[0];
    assert_eq!(rec.document_id, "doc.");
    assert_eq!(rec.fields["raw"], "a\0b", "JSON keeps NUL escaped");
    assert_eq!(all_samples(s, Some("dev.y")).await[0].value, ".");
}

/// Queries give the same answer whatever part of the reports is indexed by
/// device, and retention removes old reports and their index entries.
async fn report_index_and_retention(ctx: &Ctx) {
    let s = &ctx.store;
    let devs = ["dev-a", "dev-b", "dev-c"];
    // 60 reports: devices round robin, times interleaved out of order.
    let mut recs = Vec::new();
    for q in 0..60i64 {
        let mut r = record(65, DOC, q, Some(devs[(q % 3) as usize]), 3);
        r.report.as_mut().unwrap().sampled_at = t((q * 7) % 60);
        recs.push(r);
    }
    for chunk in recs.chunks(7) {
        s.ipdr_commit(batch(chunk.to_vec())).await.unwrap();
    }
    let query = |dev: &str, path: Option<&str>, limit: i64, offset: i64| SampleQuery {
        device_id: Some(dev.to_string()),
        path: path.map(str::to_string),
        from: Some(t(10)),
        to: Some(t(50)),
        limit,
        offset,
    };
    let key = |rows: Vec<SampleRow>| -> Vec<(DateTime<Utc>, String, String)> {
        rows.into_iter()
            .map(|r| (r.sampled_at, r.path, r.value))
            .collect()
    };
    // Expected: computed from the records themselves.
    let expected = |dev: &str, path: Option<&str>| {
        let mut e: Vec<(DateTime<Utc>, i64, usize, String, String)> = Vec::new();
        for r in &recs {
            let rep = r.report.as_ref().unwrap();
            if r.device_id.as_deref() != Some(dev)
                || rep.sampled_at < t(10)
                || rep.sampled_at >= t(50)
            {
                continue;
            }
            for (k, (p, v)) in rep.pairs.iter().enumerate() {
                if path.is_none_or(|x| x == p) {
                    e.push((rep.sampled_at, r.sequence, k, p.clone(), v.clone()));
                }
            }
        }
        // Newest first, then the newer report, then report order.
        e.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        e.into_iter().map(|x| (x.0, x.3, x.4)).collect::<Vec<_>>()
    };
    let mut rounds = 0;
    loop {
        for dev in devs {
            let all = key(s.query_samples(query(dev, None, 10_000, 0)).await.unwrap());
            assert_eq!(all, expected(dev, None), "{dev}, round {rounds}");
            assert!(!all.is_empty());
            let one = key(s
                .query_samples(query(dev, Some("Device.X.1.Value"), 10_000, 0))
                .await
                .unwrap());
            assert_eq!(one, expected(dev, Some("Device.X.1.Value")));
            // Paging: limit and offset cut the same list.
            let page = key(s.query_samples(query(dev, None, 5, 4)).await.unwrap());
            assert_eq!(page, expected(dev, None)[4..9].to_vec());
        }
        // Index a few reports at a time: every state in between is checked.
        let o = s.index_bulk_reports(13).await.unwrap();
        rounds += 1;
        if !o.more && o.indexed == 0 {
            break;
        }
        assert!(rounds < 20, "indexing does not finish: {o:?}");
    }
    assert!(rounds >= 5, "{rounds}");

    // Retention: everything received before now goes, with its index entries.
    let later = Utc::now() + Duration::seconds(1);
    let pruned = s.prune_bulk_data(later, 25).await.unwrap();
    assert_eq!(pruned.reports, 60);
    assert_eq!(pruned.index_entries, 60);
    assert!(all_samples(s, None).await.is_empty());
    assert!(s
        .query_samples(query("dev-a", None, 100, 0))
        .await
        .unwrap()
        .is_empty());
    // A resend of a pruned record is a new record again (the key went with it);
    // the session's counters stay.
    assert_eq!(session(s, EXPORTER, 65, DOC).await.records, 60);
}
