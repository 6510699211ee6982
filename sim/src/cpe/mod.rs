//! Sans-IO core of the CPE simulator (`keelson sim`).
//!
//! The simulator plays the *device* side of CWMP with the same codec the ACS
//! uses, so every message it sends is one our parser must accept and every
//! message our ACS sends is checked by a strict-but-realistic CPE.
//!
//! Layers, none of which touches a socket or a clock:
//!
//! - [`ParamTree`] — an ordered TR-181 object/parameter tree with types,
//!   writability, notification attributes and multi-instance tables, plus the
//!   CWMP semantics of the parameter RPCs (GPV/GPN/SPV/SPA/GPA/AddObject/
//!   DeleteObject) and their fault codes. [`ParamTree::tr181_gateway`]
//!   generates a realistic home-gateway tree.
//! - [`CpeDevice`] — one simulated device: identity, tree, pending events,
//!   queued transfers, deployment units, and the behaviour behind every CPE
//!   method (Reboot, Download, ChangeDUState, …). Actions that happen *after*
//!   a session (reboot, transfers, scheduled informs) come out as [`Effect`]s
//!   for the I/O runner to carry out and report back.
//! - [`CpeSession`] — the CPE side of one session as a state machine: it
//!   builds the Inform, sends the device's own requests one per POST, then
//!   the empty POST, and answers whatever the ACS sends until a 204.
//!
//! Time always comes in as a parameter (`now`), so tests are deterministic.

mod device;
mod gateway;
mod session;
mod tree;

#[cfg(test)]
mod tests;

pub use device::{
    version_from_url, CpeDevice, DeviceSettings, DuOp, Effect, PendingRequest, Transfer,
    TransferJob, TransferKind, TransferOutcome, TransferState, CPE_METHODS,
};
pub use gateway::{DeviceIdentity, ROOT_DATA_MODEL_VERSION};
pub use session::{CpeSession, SessionStep};
pub use tree::{
    ActiveNotify, Changes, Dynamic, Facet, NodeId, Param, ParamMeta, ParamTree, ReadCtx, TableSpec,
    Template, TemplateItem, XsdType, MAX_NAME_LEN,
};

/// Small deterministic PRNG (SplitMix64) so a device generated from a seed
/// is the same on every platform and crate version.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
