// Outside input reaches this crate: no panicking arithmetic, indexing or unwrapping anywhere
// in it (clippy enforces it; tests may).
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]
#![cfg_attr(
    test,
    allow(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used
    )
)]
pub mod auth;
pub mod codec;
pub mod connreq;
pub mod faults;
pub mod session;
