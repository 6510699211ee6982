//! TR-232 `BulkDataReport` (spec §7): the template, the record as a value, and its XDR
//! encoding. Shared by the IPDR document parser ([`crate::doc`]), the collector's storage
//! glue and the exporter simulator.

use crate::codec::{FieldDescriptor, TemplateBlock};
use crate::xdr::{FieldName, TypeId, Value};

/// TR-232 service namespace (the template's schemaName).
pub const TR232_SCHEMA: &str = "urn:broadband-forum-org:ipdr:tr-232-1-0";
/// TR-232 record type (the template's typeName).
pub const TR232_TYPE: &str = "BulkDataReport";
/// templateId of the simulator's one template.
pub const TR232_TEMPLATE_ID: u16 = 1;

/// How the BulkData name/value pairs are laid out in the XDR record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BulkDataLayout {
    /// `BulkData`: array of structure {`Name` string, `Value` string}.
    #[default]
    Structured,
    /// `Name1`, `Value1`, `Name2`, `Value2`, … (plain string fields).
    Flattened,
}

/// The TR-232 template for `pairs` name/value pairs.
pub fn tr232_template(layout: BulkDataLayout, pairs: usize) -> TemplateBlock {
    let f = |t: TypeId, id: u32, n: &str| FieldDescriptor::new(t, id, n);
    let mut fields = vec![
        f(TypeId::DATE_TIME_MSEC, 1, "IPDRCreationTime"),
        f(TypeId::STRING, 2, "OUI"),
        f(TypeId::STRING, 3, "ProductClass"),
        f(TypeId::STRING, 4, "SerialNumber"),
        f(TypeId::BOOLEAN, 5, "Suspect"),
    ];
    match layout {
        BulkDataLayout::Structured => {
            let mut bulk = f(
                TypeId(TypeId::STRUCTURE_FLAG | TypeId::ARRAY_FLAG),
                6,
                "BulkData",
            );
            bulk.children = vec![f(TypeId::STRING, 7, "Name"), f(TypeId::STRING, 8, "Value")];
            fields.push(bulk);
        }
        BulkDataLayout::Flattened => {
            // Field ids 7, 8, 9, ...: pair i is 2i+5 and 2i+6.
            let mut id = 5u32;
            for i in 1..=pairs {
                id = id.saturating_add(2);
                fields.push(f(TypeId::STRING, id, &format!("Name{i}")));
                fields.push(f(
                    TypeId::STRING,
                    id.saturating_add(1),
                    &format!("Value{i}"),
                ));
            }
        }
    }
    TemplateBlock {
        template_id: TR232_TEMPLATE_ID,
        schema_name: TR232_SCHEMA.into(),
        type_name: TR232_TYPE.into(),
        fields,
    }
}

/// TR-232 allows printable ASCII only in values: every other character becomes `.`.
pub fn tr232_printable(s: &str) -> String {
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '.' })
        .collect()
}

/// One TR-232 report (one record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkDataReport {
    /// Milliseconds since the epoch.
    pub creation_time_ms: u64,
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
    pub suspect: bool,
    /// (CWMP parameter path, value).
    pub bulk_data: Vec<(String, String)>,
}

/// Appends a string as IPDR/XDR encodes it: a 4-byte length, then the bytes (no padding).
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn local_name(n: &str) -> &str {
    n.rsplit(':').next().unwrap_or(n)
}

impl BulkDataReport {
    /// Appends the record as [`tr232_template`]`(layout, self.bulk_data.len())` lays it
    /// out.
    pub fn encode(&self, layout: BulkDataLayout, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.creation_time_ms.to_be_bytes());
        put_str(out, &self.oui);
        put_str(out, &self.product_class);
        put_str(out, &self.serial_number);
        out.push(self.suspect as u8);
        if layout == BulkDataLayout::Structured {
            out.extend_from_slice(&(self.bulk_data.len() as u32).to_be_bytes());
        }
        for (n, v) in &self.bulk_data {
            put_str(out, n);
            put_str(out, v);
        }
    }

    /// Reads a report back from decoded record fields (either layout; names matched on
    /// their local part). `None` if OUI, ProductClass or SerialNumber is missing.
    pub fn from_fields(fields: &[(FieldName, Value)]) -> Option<BulkDataReport> {
        let mut r = BulkDataReport {
            creation_time_ms: 0,
            oui: String::new(),
            product_class: String::new(),
            serial_number: String::new(),
            suspect: false,
            bulk_data: Vec::new(),
        };
        let (mut oui, mut pc, mut sn) = (false, false, false);
        let mut flat_name: Option<String> = None;
        for (name, value) in fields {
            let name = local_name(name);
            match (name, value) {
                ("IPDRCreationTime", Value::DateTimeMsec(t)) => r.creation_time_ms = *t,
                ("OUI", Value::String(s)) => (r.oui, oui) = (s.clone(), true),
                ("ProductClass", Value::String(s)) => (r.product_class, pc) = (s.clone(), true),
                ("SerialNumber", Value::String(s)) => (r.serial_number, sn) = (s.clone(), true),
                ("Suspect", Value::Boolean(b)) => r.suspect = *b,
                ("BulkData", Value::Array(items)) => {
                    for it in items {
                        let Value::Structure(members) = it else {
                            continue;
                        };
                        let get = |k: &str| {
                            members.iter().find_map(|(n, v)| match v {
                                Value::String(s) if local_name(n) == k => Some(s.clone()),
                                _ => None,
                            })
                        };
                        if let (Some(n), Some(v)) = (get("Name"), get("Value")) {
                            r.bulk_data.push((n, v));
                        }
                    }
                }
                (n, Value::String(s)) if n.starts_with("Name") => flat_name = Some(s.clone()),
                (n, Value::String(s)) if n.starts_with("Value") => {
                    if let Some(pn) = flat_name.take() {
                        r.bulk_data.push((pn, s.clone()));
                    }
                }
                _ => {}
            }
        }
        (oui && pc && sn).then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable() {
        assert_eq!(tr232_printable("a\tb\u{e9}~ "), "a.b.~ ");
    }
}
