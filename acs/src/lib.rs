pub mod codec;
pub mod auth;
pub mod connreq;
pub mod session;
pub mod sim;
