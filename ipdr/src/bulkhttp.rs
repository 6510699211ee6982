//! HTTP bulk-data reports (TR-069 Annex N / TR-157 Annex A, `Device.BulkData` with Protocol
//! HTTP): JSON (`NameValuePair`, `ObjectHierarchy`) and CSV (`ParameterPerRow`,
//! `ParameterPerColumn`), parsed into reports of (parameter, value) samples. No I/O.
//!
//! A device that failed to deliver earlier reports appends them to the next one, so one body
//! carries one or more reports, each with its own collection time.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

/// One report interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `CollectionTime` (JSON) or `ReportTimestamp` (CSV), when the report carries one.
    pub collection_time: Option<DateTime<Utc>>,
    /// (parameter path or alternative name, value as text).
    pub samples: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    NameValuePair,
    ObjectHierarchy,
    ParameterPerRow,
    ParameterPerColumn,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BulkError {
    #[error("unsupported Content-Type {0:?} (expected application/json or text/csv)")]
    ContentType(String),
    #[error("missing or unknown BBF-Report-Format {0:?}")]
    Format(String),
    #[error("report format {format:?} does not apply to {media}")]
    FormatMismatch {
        format: ReportFormat,
        media: &'static str,
    },
    #[error("malformed JSON report: {0}")]
    Json(String),
    #[error("malformed CSV report: {0}")]
    Csv(String),
    #[error("report body is not UTF-8")]
    Utf8,
    #[error("report has no data")]
    Empty,
}

impl ReportFormat {
    /// The `BBF-Report-Format` header value, quoted or not.
    pub fn parse(header: &str) -> Result<ReportFormat, BulkError> {
        match header.trim().trim_matches('"').trim() {
            "NameValuePair" => Ok(ReportFormat::NameValuePair),
            "ObjectHierarchy" => Ok(ReportFormat::ObjectHierarchy),
            "ParameterPerRow" => Ok(ReportFormat::ParameterPerRow),
            "ParameterPerColumn" => Ok(ReportFormat::ParameterPerColumn),
            other => Err(BulkError::Format(other.to_string())),
        }
    }
}

/// Parses a report body. `content_type` is the HTTP Content-Type (media type plus parameters
/// such as `charset` and, for CSV, `header=present`); `format` the BBF-Report-Format header.
/// A JSON body without the header is read as NameValuePair (what most agents send).
pub fn parse_report(
    content_type: &str,
    format: Option<&str>,
    body: &[u8],
) -> Result<Vec<Report>, BulkError> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body).map_err(|_| BulkError::Utf8)?;
    let reports = match media.as_str() {
        "application/json" | "text/json" => {
            let f = match format {
                Some(h) => ReportFormat::parse(h)?,
                None => ReportFormat::NameValuePair,
            };
            if !matches!(
                f,
                ReportFormat::NameValuePair | ReportFormat::ObjectHierarchy
            ) {
                return Err(BulkError::FormatMismatch {
                    format: f,
                    media: "JSON",
                });
            }
            parse_json(text, f)?
        }
        "text/csv" | "application/csv" => {
            let f = ReportFormat::parse(format.unwrap_or(""))?;
            if !matches!(
                f,
                ReportFormat::ParameterPerRow | ReportFormat::ParameterPerColumn
            ) {
                return Err(BulkError::FormatMismatch {
                    format: f,
                    media: "CSV",
                });
            }
            parse_csv(text, f)?
        }
        _ => return Err(BulkError::ContentType(content_type.to_string())),
    };
    if reports.iter().all(|r| r.samples.is_empty()) {
        return Err(BulkError::Empty);
    }
    Ok(reports)
}

/// An epoch number (seconds) or an ISO-8601 date-time.
fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return Utc.timestamp_opt(secs, 0).single();
    }
    if let Ok(secs) = v.parse::<f64>() {
        return Utc
            .timestamp_opt(secs.trunc() as i64, (secs.fract() * 1e9) as u32)
            .single();
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|n| n.and_utc())
        })
}

fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn parse_json(text: &str, format: ReportFormat) -> Result<Vec<Report>, BulkError> {
    let root: Value = serde_json::from_str(text).map_err(|e| BulkError::Json(e.to_string()))?;
    let list = root
        .get("Report")
        .and_then(Value::as_array)
        .ok_or_else(|| BulkError::Json("no \"Report\" array".into()))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let obj = r
            .as_object()
            .ok_or_else(|| BulkError::Json(format!("Report[{i}] is not an object")))?;
        let mut report = Report {
            collection_time: None,
            samples: Vec::new(),
        };
        for (k, v) in obj {
            if k == "CollectionTime" {
                report.collection_time = parse_time(&json_text(v));
                if report.collection_time.is_none() {
                    return Err(BulkError::Json(format!(
                        "Report[{i}].CollectionTime {v} is neither epoch seconds nor ISO-8601"
                    )));
                }
                continue;
            }
            match format {
                ReportFormat::ObjectHierarchy => flatten(k, v, &mut report.samples),
                _ => {
                    if v.is_object() || v.is_array() {
                        return Err(BulkError::Json(format!(
                            "Report[{i}].{k}: NameValuePair values must be scalars"
                        )));
                    }
                    report.samples.push((k.clone(), json_text(v)));
                }
            }
        }
        out.push(report);
    }
    Ok(out)
}

/// ObjectHierarchy: nested objects (instance numbers as keys) back to dotted paths.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                flatten(&format!("{prefix}.{k}"), child, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                flatten(&format!("{prefix}.{}", i.saturating_add(1)), child, out);
            }
        }
        scalar => out.push((prefix.to_string(), json_text(scalar))),
    }
}

fn parse_csv(text: &str, format: ReportFormat) -> Result<Vec<Report>, BulkError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| BulkError::Csv(e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let ts_col = col("ReportTimestamp");
    let mut out: Vec<Report> = Vec::new();
    match format {
        ReportFormat::ParameterPerRow => {
            let (Some(name_col), Some(value_col)) = (col("ParameterName"), col("ParameterValue"))
            else {
                return Err(BulkError::Csv(
                    "ParameterPerRow needs ParameterName and ParameterValue columns".into(),
                ));
            };
            for (line, row) in rdr.records().enumerate() {
                let row = row.map_err(|e| BulkError::Csv(e.to_string()))?;
                // `flexible(false)`: every row has the header's columns.
                let cell = |c: usize| row.get(c).unwrap_or_default();
                let time = match ts_col {
                    Some(c) => Some(parse_time(cell(c)).ok_or_else(|| {
                        BulkError::Csv(format!(
                            "row {}: bad ReportTimestamp {:?}",
                            line.saturating_add(2),
                            cell(c)
                        ))
                    })?),
                    None => None,
                };
                let sample = (cell(name_col).to_string(), cell(value_col).to_string());
                match out.last_mut() {
                    Some(r) if r.collection_time == time => r.samples.push(sample),
                    _ => out.push(Report {
                        collection_time: time,
                        samples: vec![sample],
                    }),
                }
            }
        }
        _ => {
            for (line, row) in rdr.records().enumerate() {
                let row = row.map_err(|e| BulkError::Csv(e.to_string()))?;
                let mut report = Report {
                    collection_time: None,
                    samples: Vec::with_capacity(headers.len()),
                };
                for (h, value) in headers.iter().zip(row.iter()) {
                    if ts_col.is_some_and(|c| headers.get(c) == Some(h)) {
                        report.collection_time = Some(parse_time(value).ok_or_else(|| {
                            BulkError::Csv(format!(
                                "row {}: bad ReportTimestamp {:?}",
                                line.saturating_add(2),
                                value
                            ))
                        })?);
                    } else {
                        report.samples.push((h.clone(), value.to_string()));
                    }
                }
                out.push(report);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]
mod tests {
    use super::*;

    #[test]
    fn json_name_value_pairs_with_retained_reports() {
        let body = br#"{"Report":[
            {"CollectionTime":1700000000,"Device.DeviceInfo.UpTime":3600,"Device.WiFi.Radio.1.Enable":true},
            {"CollectionTime":"2023-11-14T22:15:00Z","Device.DeviceInfo.UpTime":3900,"Device.X.Name":"a,b"}
        ]}"#;
        let r = parse_report(
            "application/json; charset=UTF-8",
            Some("\"NameValuePair\""),
            body,
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0].collection_time.unwrap(),
            Utc.timestamp_opt(1_700_000_000, 0).unwrap()
        );
        assert!(r[0]
            .samples
            .contains(&("Device.WiFi.Radio.1.Enable".into(), "true".into())));
        assert!(r[1]
            .samples
            .contains(&("Device.X.Name".into(), "a,b".into())));
        assert_eq!(
            r[1].collection_time.unwrap(),
            Utc.timestamp_opt(1_700_000_100, 0).unwrap()
        );
    }

    #[test]
    fn json_object_hierarchy() {
        let body = br#"{"Report":[{"CollectionTime":1700000000,
            "Device":{"IP":{"Interface":{"1":{"Stats":{"BytesSent":10}},"2":{"Stats":{"BytesSent":20}}}}}}]}"#;
        let r = parse_report("application/json", Some("ObjectHierarchy"), body).unwrap();
        let mut s = r[0].samples.clone();
        s.sort();
        assert_eq!(
            s,
            vec![
                ("Device.IP.Interface.1.Stats.BytesSent".into(), "10".into()),
                ("Device.IP.Interface.2.Stats.BytesSent".into(), "20".into())
            ]
        );
    }

    #[test]
    fn csv_parameter_per_row_and_column() {
        let row = "ReportTimestamp,ParameterName,ParameterValue,ParameterType\r\n\
            1700000000,Device.DeviceInfo.UpTime,3600,unsignedInt\r\n\
            1700000000,Device.X.Name,\"a,b\",string\r\n\
            1700000300,Device.DeviceInfo.UpTime,3900,unsignedInt\r\n";
        let r = parse_report(
            "text/csv; charset=UTF-8; header=present",
            Some("ParameterPerRow"),
            row.as_bytes(),
        )
        .unwrap();
        assert_eq!(r.len(), 2, "grouped by timestamp");
        assert_eq!(r[0].samples[1], ("Device.X.Name".into(), "a,b".into()));
        let col = "ReportTimestamp,Device.DeviceInfo.UpTime,Device.X.Name\r\n\
            2023-11-14T22:13:20Z,3600,x\r\n2023-11-14T22:18:20Z,3900,y\r\n";
        let r = parse_report("text/csv", Some("ParameterPerColumn"), col.as_bytes()).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1].samples,
            vec![
                ("Device.DeviceInfo.UpTime".into(), "3900".into()),
                ("Device.X.Name".into(), "y".into())
            ]
        );
    }

    #[test]
    fn bad_reports_are_refused_with_a_reason() {
        let cases: Vec<(&str, Option<&str>, &[u8], &str)> = vec![
            ("text/plain", None, b"x", "Content-Type"),
            ("application/json", None, b"{not json", "malformed JSON"),
            ("application/json", None, br#"{"NoReport":[]}"#, "Report"),
            (
                "application/json",
                None,
                br#"{"Report":[{"A":{"B":1}}]}"#,
                "scalars",
            ),
            (
                "application/json",
                Some("ParameterPerRow"),
                br#"{"Report":[]}"#,
                "does not apply",
            ),
            (
                "application/json",
                None,
                br#"{"Report":[{"CollectionTime":"yesterday","A":1}]}"#,
                "CollectionTime",
            ),
            ("application/json", None, br#"{"Report":[]}"#, "no data"),
            ("text/csv", None, b"a,b\r\n1,2\r\n", "BBF-Report-Format"),
            (
                "text/csv",
                Some("ParameterPerRow"),
                b"a,b\r\n1,2\r\n",
                "ParameterName",
            ),
            (
                "text/csv",
                Some("ParameterPerColumn"),
                b"A,B\r\n1\r\n",
                "malformed CSV",
            ),
            (
                "text/csv",
                Some("ParameterPerRow"),
                b"ReportTimestamp,ParameterName,ParameterValue\r\nnever,A,1\r\n",
                "ReportTimestamp",
            ),
            ("application/json", None, b"\xff\xfe", "UTF-8"),
        ];
        for (ct, f, body, want) in cases {
            let e = parse_report(ct, f, body).unwrap_err().to_string();
            assert!(e.contains(want), "{ct} {f:?}: {e} (wanted {want})");
        }
    }
}
