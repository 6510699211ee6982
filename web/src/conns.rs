//! Connection admission for the HTTP listeners (actix): the `on_connect` step that takes a
//! place in the listener's [`Registry`] (the `admission` crate: caps per peer address and in
//! total, refusals logged and counted) and shuts a refused connection down at once.
//!
//! An admitted connection holds its [`admission::Slot`] in its connection data; dropping it
//! (when the connection ends) gives the place back and runs the listener's close hook (the
//! CWMP listener detaches the connection's session).

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Extensions;
pub use admission::{Caps, CloseHook, Registry};

/// The peer of an accepted connection (plain TCP or rustls), and the TCP stream to shut
/// down if it is refused.
pub fn peer_of(conn: &dyn Any) -> Option<(SocketAddr, socket2::SockRef<'_>)> {
    use actix_web::rt::net::TcpStream;
    let tcp = match conn.downcast_ref::<TcpStream>() {
        Some(t) => t,
        None => {
            conn.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()?
                .get_ref()
                .0
        }
    };
    Some((tcp.peer_addr().ok()?, socket2::SockRef::from(tcp)))
}

/// Marks a refused connection in its data, so a request that slips in before the shutdown
/// lands is answered 503.
#[derive(Debug, Clone, Copy)]
pub struct Refused;

/// The `on_connect` step shared by the listeners: admit the connection into `registry`
/// (keeping its [`Slot`] in the connection data) or shut it down.
pub fn admit_connection(
    registry: &Arc<Registry>,
    conn: &dyn Any,
    ext: &mut Extensions,
    conn_id: u64,
    on_close: Option<CloseHook>,
) -> bool {
    let Some((peer, sock)) = peer_of(conn) else {
        return true;
    };
    match registry.admit(peer.ip(), conn_id, on_close) {
        Ok(slot) => {
            ext.insert(Arc::new(slot));
            true
        }
        Err(_) => {
            let _ = sock.shutdown(std::net::Shutdown::Both);
            ext.insert(Refused);
            false
        }
    }
}
