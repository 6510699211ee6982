//! UDP version discovery (spec §3.9): a 12-byte request, a `ProtocolInfo` list in reply.
//! Sent to the exporter's streaming port number over UDP.

// Outside input: no panicking arithmetic, indexing or unwrapping here (clippy enforces it).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::net::Ipv4Addr;

use super::wire::{len_u32, put_u16, put_u32, DecodeError, EncodeError, Reader};

/// The 4 ASCII bytes at the end of a request naming the protocol family asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolTag {
    /// `IPDR`: IPDR/SP version 2.
    Ipdr,
    /// `CRAN`: CRANE, version 1.
    Crane,
    Other([u8; 4]),
}

impl ProtocolTag {
    pub fn bytes(self) -> [u8; 4] {
        match self {
            ProtocolTag::Ipdr => *b"IPDR",
            ProtocolTag::Crane => *b"CRAN",
            ProtocolTag::Other(b) => b,
        }
    }

    pub fn from_bytes(b: [u8; 4]) -> ProtocolTag {
        match &b {
            b"IPDR" => ProtocolTag::Ipdr,
            b"CRAN" => ProtocolTag::Crane,
            _ => ProtocolTag::Other(b),
        }
    }
}

/// Version-discovery request (12 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRequest {
    pub requester_address: Ipv4Addr,
    /// Seconds since the epoch.
    pub requester_boot_time: u32,
    pub protocol: ProtocolTag,
}

impl VersionRequest {
    pub const LEN: usize = 12;

    pub fn encode(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&u32::from(self.requester_address).to_be_bytes());
        b[4..8].copy_from_slice(&self.requester_boot_time.to_be_bytes());
        b[8..12].copy_from_slice(&self.protocol.bytes());
        b
    }

    /// Decodes a request; bytes after the first 12 are ignored.
    pub fn decode(b: &[u8]) -> Result<VersionRequest, DecodeError> {
        let mut r = Reader::new(b);
        let requester_address = Ipv4Addr::from(r.u32("requesterAddress")?);
        let requester_boot_time = r.u32("requesterBootTime")?;
        let t = r.take(4, "protocol")?;
        let tag: [u8; 4] = t.try_into().unwrap_or_default();
        Ok(VersionRequest {
            requester_address,
            requester_boot_time,
            protocol: ProtocolTag::from_bytes(tag),
        })
    }
}

/// `transportType` of a [`ProtocolInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransportType(pub u32);

impl TransportType {
    pub const TCP: TransportType = TransportType(1);
    pub const SCTP: TransportType = TransportType(2);
}

/// One transport/version/port the exporter offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolInfo {
    pub transport_type: TransportType,
    pub protocol_version: u32,
    pub port: u16,
    pub reserved: u16,
}

/// Version-discovery response: one ProtocolInfo, then a u32 count of additional ones.
/// `protocols` holds them all (the first one first) and is never empty after decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionResponse {
    pub protocols: Vec<ProtocolInfo>,
}

impl VersionResponse {
    const INFO_LEN: usize = 12;

    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(
            Self::INFO_LEN
                .saturating_mul(self.protocols.len().max(1))
                .saturating_add(4),
        );
        let put = |out: &mut Vec<u8>, p: &ProtocolInfo| {
            put_u32(out, p.transport_type.0);
            put_u32(out, p.protocol_version);
            put_u16(out, p.port);
            put_u16(out, p.reserved);
        };
        match self.protocols.split_first() {
            Some((first, rest)) => {
                put(&mut out, first);
                put_u32(&mut out, len_u32(rest.len(), "protocols")?);
                for p in rest {
                    put(&mut out, p);
                }
            }
            None => {
                // Nothing to offer: an all-zero first entry, no additional ones.
                out.extend_from_slice(&[0u8; 16]);
            }
        }
        Ok(out)
    }

    pub fn decode(b: &[u8]) -> Result<VersionResponse, DecodeError> {
        let mut r = Reader::new(b);
        let info = |r: &mut Reader<'_>| -> Result<ProtocolInfo, DecodeError> {
            Ok(ProtocolInfo {
                transport_type: TransportType(r.u32("transportType")?),
                protocol_version: r.u32("protocolVersion")?,
                port: r.u16("portNumber")?,
                reserved: r.u16("reserved")?,
            })
        };
        let first = info(&mut r)?;
        let n = r.count("additionalProtocols", Self::INFO_LEN)?;
        let mut protocols = Vec::with_capacity(n.saturating_add(1));
        protocols.push(first);
        for _ in 0..n {
            protocols.push(info(&mut r)?);
        }
        Ok(VersionResponse { protocols })
    }

    /// The first offer of IPDR/SP version 2 over the given transport.
    pub fn find(&self, transport: TransportType) -> Option<&ProtocolInfo> {
        self.protocols
            .iter()
            .find(|p| p.transport_type == transport && p.protocol_version == 2)
    }
}
