//! A deliberately plain HTTP/1.1 client over one TCP connection, so tests control exactly what
//! goes on the wire (chunked bodies, encodings, odd headers) and which connection carries it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A byte stream a [`Conn`] can run over: plain TCP or TLS.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

pub struct Conn {
    reader: BufReader<Box<dyn Stream>>,
    port: u16,
    pub cookie: Option<String>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Conn {
    pub fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        Conn::over(s, port)
    }

    /// A connection over an already connected TCP stream (e.g. bound to another source
    /// address first).
    pub fn over(s: TcpStream, port: u16) -> Conn {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Conn {
            reader: BufReader::new(Box::new(s)),
            port,
            cookie: None,
        }
    }

    /// A TLS connection (any server certificate accepted: the ACS's is self-signed).
    pub fn open_tls(port: u16) -> Conn {
        use std::sync::Arc;
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(acs::connreq::AcceptAnyServerCert(provider)))
            .with_no_client_auth();
        let conn =
            rustls::ClientConnection::new(Arc::new(cfg), "localhost".try_into().unwrap()).unwrap();
        Conn {
            reader: BufReader::new(Box::new(rustls::StreamOwned::new(conn, s))),
            port,
            cookie: None,
        }
    }

    /// True once the server has closed the connection (reads end-of-stream or an error).
    pub fn closed_by_peer(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }

    /// Writes raw bytes (for tests that speak HTTP by hand).
    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let s = self.reader.get_mut();
        s.write_all(bytes)?;
        s.flush()
    }

    /// Reads one response (after [`write_raw`](Self::write_raw)).
    pub fn read_one(&mut self) -> Resp {
        self.read_response()
    }

    /// Sends raw head lines (without the final blank line) and a body with Content-Length.
    pub fn post(&mut self, extra_headers: &[(&str, &str)], body: &[u8]) -> Resp {
        self.post_to("/", extra_headers, body)
    }

    /// [`post`](Self::post) to another path.
    pub fn post_to(&mut self, path: &str, extra_headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        self.push_common(&mut head, extra_headers);
        self.send(head, body)
    }

    /// Sends a body with `Transfer-Encoding: chunked` (one chunk, or none when empty).
    pub fn post_chunked(&mut self, extra_headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut head = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nTransfer-Encoding: chunked\r\n",
            self.port
        );
        self.push_common(&mut head, extra_headers);
        let mut chunked = Vec::new();
        if !body.is_empty() {
            chunked.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            chunked.extend_from_slice(body);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        self.send(head, &chunked)
    }

    pub fn request(&mut self, method: &str, path: &str) -> Resp {
        self.request_with(method, path, &[])
    }

    pub fn request_with(&mut self, method: &str, path: &str, extra: &[(&str, &str)]) -> Resp {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n",
            self.port
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        self.send(head, b"")
    }

    fn push_common(&self, head: &mut String, extra: &[(&str, &str)]) {
        if let Some(c) = &self.cookie {
            head.push_str(&format!("Cookie: {c}\r\n"));
        }
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }

    fn send(&mut self, mut head: String, body: &[u8]) -> Resp {
        head.push_str("\r\n");
        let s = self.reader.get_mut();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        s.flush().unwrap();
        self.read_response()
    }

    fn read_response(&mut self) -> Resp {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no status line: {line:?}"))
            .parse()
            .unwrap();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).unwrap();
        if let Some((_, c)) = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        {
            self.cookie = Some(c.split(';').next().unwrap().to_string());
        }
        Resp {
            status,
            headers,
            body,
        }
    }
}
