//! Deterministic property-style tests: a seeded generator drives random and mutated input
//! through the framer, the message decoder, the record decoder and the collector. Nothing
//! may panic; what decodes must re-encode and decode to the same value; the collector
//! never acknowledges beyond what storage confirmed and never persists a record twice.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use ipdr::codec::FieldDescriptor as Fd;
use ipdr::codec::*;
use ipdr::collector::{Event, Output};
use ipdr::xdr::{decode_record, Ipv6Encoding, RecordOptions, Template, TypeId};
use ipdr::{Body, Framer, Message};

fn check_round_trip(m: &Message) {
    let bytes = m.to_bytes().expect("a decoded message encodes");
    let again = Message::decode_slice(&bytes).expect("an encoded message decodes");
    assert_eq!(&again, m);
}

/// Pushes `bytes` in random chunks, checking every decoded message.
fn frame_all(rng: &mut Rng, f: &mut Framer, bytes: &[u8]) -> (usize, usize) {
    let (mut ok, mut err) = (0, 0);
    let mut i = 0;
    while i < bytes.len() {
        let n = 1 + rng.below(64.min(bytes.len() - i));
        f.push(&bytes[i..i + n]);
        i += n;
        while let Some(r) = f.next_message() {
            match r {
                Ok(m) => {
                    check_round_trip(&m);
                    ok += 1;
                }
                Err(e) => {
                    let _ = (e.must_close(), e.to_error_message(0).to_bytes().unwrap());
                    err += 1;
                }
            }
        }
    }
    (ok, err)
}

#[test]
fn random_bytes_never_panic_the_framer() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..20_000 {
        let len = rng.below(400);
        let mut b = rng.bytes(len);
        // Half of the time, make it look like a header of a known message so that the body
        // decoders get exercised rather than the version check.
        if len >= 8 && rng.below(2) == 0 {
            b[0] = 2;
            b[1] = MessageId::ALL[rng.below(MessageId::ALL.len())] as u8;
            let l = (8 + rng.below(len)) as u32;
            b[4..8].copy_from_slice(&l.to_be_bytes());
        }
        let mut f = Framer::new(256 + rng.below(512));
        let (o, e) = frame_all(&mut rng, &mut f, &b);
        ok += o;
        err += e;
    }
    assert!(
        ok > 100 && err > 100,
        "both paths exercised: {ok} ok, {err} errors"
    );
}

/// Applies 1..=4 random mutations.
fn mutate(rng: &mut Rng, b: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            b.push(2);
        }
        let i = rng.below(b.len());
        match rng.below(7) {
            0 => b[i] ^= 1 << rng.below(8),
            1 => b[i] = rng.next() as u8,
            2 => {
                b.insert(i, rng.next() as u8);
            }
            3 => {
                b.remove(i);
            }
            4 => b.truncate(i),
            5 => {
                // Overwrite a u32 (length fields and counts are u32).
                if i + 4 <= b.len() {
                    let v = match rng.below(3) {
                        0 => u32::MAX,
                        1 => rng.below(64) as u32,
                        _ => rng.next() as u32,
                    };
                    b[i..i + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
            _ => {
                let j = rng.below(b.len());
                let (a, c) = (i.min(j), i.max(j));
                let chunk = b[a..c].to_vec();
                b.splice(a..a, chunk);
            }
        }
    }
}

#[test]
fn mutated_golden_messages_decode_or_fail_cleanly() {
    let mut rng = Rng(99);
    let all: Vec<Vec<u8>> = golden().into_iter().map(|g| g.bytes).collect();
    let mut decoded = 0;
    for _ in 0..100_000 {
        let mut b = all[rng.below(all.len())].clone();
        mutate(&mut rng, &mut b);
        // Keep the declared length consistent half of the time so bodies get decoded.
        if b.len() >= 8 && rng.below(2) == 0 {
            let l = b.len() as u32;
            b[4..8].copy_from_slice(&l.to_be_bytes());
        }
        if let Ok(m) = Message::decode_slice(&b) {
            check_round_trip(&m);
            decoded += 1;
        }
    }
    assert!(decoded > 1000, "{decoded}");
}

#[test]
fn mutated_golden_stream_through_the_collector() {
    let mut rng = Rng(7);
    let stream: Vec<u8> = golden()
        .into_iter()
        .filter(|g| g.from_exporter)
        .flat_map(|g| g.bytes)
        .collect();
    let mut persisted_total = 0;
    let mut acks_total = 0;
    for round in 0..6000 {
        let mut b = stream.clone();
        if round % 10 != 0 {
            mutate(&mut rng, &mut b);
        }
        let t0 = Instant::now();
        let mut c = golden_collector(t0);
        let mut f = Framer::new(4096);
        let mut seen = HashSet::new();
        let mut durable: Vec<(DocumentId, u64)> = Vec::new();
        let mut confirmed: std::collections::HashMap<DocumentId, u64> = Default::default();
        let mut current_doc = None;
        let mut t = t0;
        let mut i = 0;
        loop {
            // Drain outputs and check the invariants.
            while let Some(o) = c.poll_output() {
                match o {
                    Output::Persist(r) => {
                        assert!(
                            seen.insert((r.document_id, r.sequence_num)),
                            "persisted twice"
                        );
                        persisted_total += 1;
                        durable.push((r.document_id, r.sequence_num));
                    }
                    Output::Event(Event::SessionStarted { document_id, .. }) => {
                        current_doc = Some(document_id)
                    }
                    Output::Send(m) => {
                        m.to_bytes().unwrap();
                        if let Body::DataAck(a) = m.body {
                            // Every record persisted at or below the acknowledged DSN is
                            // confirmed durable (rejected records may be covered too).
                            let doc = current_doc.expect("ack within a document");
                            let conf = confirmed.get(&doc).copied();
                            for &(d, dsn) in &seen {
                                if d == doc && dsn <= a.sequence_num {
                                    assert!(
                                        conf.is_some_and(|c| dsn <= c),
                                        "DATA_ACK {} covers {dsn}, durable {conf:?}",
                                        a.sequence_num
                                    );
                                }
                            }
                            acks_total += 1;
                        }
                    }
                    _ => {}
                }
            }
            if i >= b.len() || c.is_closed() {
                break;
            }
            let n = 1 + rng.below(200.min(b.len() - i));
            f.push(&b[i..i + n]);
            i += n;
            while let Some(r) = f.next_message() {
                match r {
                    Ok(m) => c.handle_message(t, m),
                    Err(e) => c.handle_frame_error(t, &e),
                }
            }
            // Storage sometimes confirms part of what it got.
            if !durable.is_empty() && rng.below(3) == 0 {
                let k = rng.below(durable.len());
                let (doc, dsn) = durable[k];
                durable.drain(..=k);
                let e = confirmed.entry(doc).or_insert(0);
                *e = (*e).max(dsn);
                c.records_durable(t, 1, doc, dsn);
            }
            if rng.below(4) == 0 {
                t += Duration::from_millis(rng.below(3000) as u64);
                c.handle_timeout(t);
            }
        }
    }
    assert!(
        persisted_total > 1000 && acks_total > 500,
        "{persisted_total} {acks_total}"
    );
}

fn random_field(rng: &mut Rng, depth: usize) -> Fd {
    const TYPES: [u32; 21] = [
        0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x122, 0x224,
        0x322, 0x427, 0x527, 0x623, 0x723, 0x827,
    ];
    let mut f = Fd::new(
        TypeId(TYPES[rng.below(TYPES.len())]),
        rng.next() as u32,
        format!("f{}", rng.below(100)),
    );
    if depth < 3 && rng.below(6) == 0 {
        f.type_id = TypeId::STRUCTURE;
        f.children = (0..rng.below(4))
            .map(|_| random_field(rng, depth + 1))
            .collect();
    }
    if rng.below(5) == 0 {
        f.type_id = f.type_id.array_of();
    }
    f.enabled = rng.below(8) != 0;
    f
}

#[test]
fn random_records_against_random_templates() {
    let mut rng = Rng(2024);
    let golden_template = {
        let Body::TemplateData(t) = Message::decode_slice(&golden_msg("TEMPLATE_DATA", 0))
            .unwrap()
            .body
        else {
            panic!()
        };
        t.templates[0].clone()
    };
    let golden_record = {
        let Body::Data(d) = Message::decode_slice(&golden_msg("DATA", 0)).unwrap().body else {
            panic!()
        };
        d.record.to_vec()
    };
    let mut decoded = 0;
    for i in 0..20_000 {
        let block = if i % 2 == 0 {
            golden_template.clone()
        } else {
            TemplateBlock {
                template_id: 1,
                schema_name: String::new(),
                type_name: String::new(),
                fields: (0..rng.below(12))
                    .map(|_| random_field(&mut rng, 0))
                    .collect(),
            }
        };
        // The template itself survives a TEMPLATE_DATA round trip.
        check_round_trip(&Message::new(
            1,
            Body::TemplateData(TemplateData {
                config_id: 1,
                flags: 0,
                templates: vec![block.clone()],
            }),
        ));
        let ipv6 = [
            Ipv6Encoding::Auto,
            Ipv6Encoding::Raw16,
            Ipv6Encoding::Prefixed,
        ][rng.below(3)];
        let t = Template::with_options(
            block,
            RecordOptions {
                ipv6,
                max_array_len: 1000,
                ..RecordOptions::default()
            },
        )
        .unwrap();
        let rec = if i % 2 == 0 {
            let mut r = golden_record.clone();
            mutate(&mut rng, &mut r);
            r
        } else {
            let n = rng.below(300);
            rng.bytes(n)
        };
        if decode_record(&t, &rec).is_ok() {
            decoded += 1;
        }
    }
    assert!(decoded > 50, "{decoded}");
}
