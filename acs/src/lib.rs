pub mod auth;
pub mod codec;
pub mod connreq;
pub mod faults;
pub mod session;
