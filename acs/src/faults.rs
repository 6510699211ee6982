//! Keelson's own fault codes, recorded on tasks when the outcome is not a CPE's fault.
//!
//! They sit in the range TR-069 leaves to ACS vendors (8800–8899), so a NOC never reads an
//! unknown outcome as success (code 0) nor confuses it with a CPE fault (9000–9899).

/// The session ended (connection lost, idle timeout, storage failure) while the RPC was on
/// the wire: the CPE may or may not have carried it out.
pub const SESSION_ABORTED: u32 = 8800;
/// The CPE sent an empty POST instead of answering the RPC.
pub const NO_RESPONSE: u32 = 8801;
/// The CPE's answer was not a valid response to the RPC (wrong cwmp:ID, wrong method,
/// impossible values such as `InstanceNumber 0`).
pub const INVALID_RESPONSE: u32 = 8802;
/// The task's arguments do not make a valid RPC.
pub const INVALID_ARGUMENTS: u32 = 8803;
/// The node whose session sent the RPC stopped (restart or crash) or lost track of it: the
/// task's lease expired with the outcome unknown.
pub const LEASE_EXPIRED: u32 = 8804;
/// The CPE acknowledged the RPC but never reported its completion (TransferComplete, a boot
/// after Reboot, …) before the task's deadline.
pub const COMPLETION_TIMEOUT: u32 = 8805;
/// The CPE bootstrapped (`0 BOOTSTRAP`) while the task waited for completion.
pub const CANCELLED_BY_BOOTSTRAP: u32 = 8806;
/// The CPE began a new session (a new Inform) while the RPC was on the wire, e.g. after a
/// reboot.
pub const SUPERSEDED: u32 = 8807;

/// A one-line meaning of a Keelson fault code, for the NBI and the console.
pub fn describe(code: u32) -> Option<&'static str> {
    Some(match code {
        SESSION_ABORTED => "session aborted while the RPC was on the wire (outcome unknown)",
        NO_RESPONSE => "the CPE sent an empty POST instead of a response",
        INVALID_RESPONSE => "the CPE's response was not a valid answer to the RPC",
        INVALID_ARGUMENTS => "the task's arguments do not make a valid RPC",
        LEASE_EXPIRED => "the ACS node running the RPC stopped (outcome unknown)",
        COMPLETION_TIMEOUT => "the CPE never reported completion",
        CANCELLED_BY_BOOTSTRAP => "cancelled by the CPE's BOOTSTRAP",
        SUPERSEDED => "the CPE started a new session while the RPC was on the wire",
        _ => return None,
    })
}
