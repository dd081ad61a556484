//! A real SMTP server over TCP for the tests: it speaks enough of RFC 5321
//! for lettre (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps every message
//! with its envelope, and decodes the MIME parts so tests read what a person
//! would read.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;

#[derive(Debug, Clone)]
pub struct Received {
    pub rcpt: Vec<String>,
    pub raw: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with(' ') || line.starts_with('\t') {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    value = Some(v.trim().to_string());
                }
            }
        }
        value.map(|v| decode_words(&v))
    }

    pub fn message_id(&self) -> String {
        self.header("Message-ID").unwrap_or_default()
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The decoded text/plain and text/html parts, joined.
    pub fn text(&self) -> String {
        decoded_parts(&self.raw).join("\n")
    }
}

/// How the server answers; tests change it while it runs.
#[derive(Debug, Default)]
pub struct Policy {
    /// Recipients refused with `550 5.1.1` at RCPT TO.
    pub reject: Mutex<Vec<String>>,
    /// While set, every MAIL FROM gets `451 4.3.0` (try again later).
    pub tempfail: AtomicBool,
    /// Milliseconds the server waits before it accepts a message's data.
    pub data_delay_ms: AtomicU64,
    /// How many messages have begun DATA (a mail "on its way").
    pub data_begun: AtomicUsize,
    /// Every RCPT TO seen, refused or not.
    pub rcpt_seen: Mutex<Vec<String>>,
}

pub struct SmtpServer {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub policy: Arc<Policy>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        SmtpServer::start_on(0)
    }

    pub fn start_on(port: u16) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("smtp port");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let policy = Arc::new(Policy::default());
        let store = received.clone();
        let p = policy.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let store = store.clone();
                let p = p.clone();
                std::thread::spawn(move || {
                    let _ = session(stream, &store, &p);
                });
            }
        });
        SmtpServer { port, received, policy }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn reject(&self, addr: &str) {
        self.policy.reject.lock().unwrap().push(addr.to_string());
    }

    pub fn set_tempfail(&self, on: bool) {
        self.policy.tempfail.store(on, Ordering::SeqCst);
    }

    /// How often the server was asked to deliver to `addr`.
    pub fn rcpt_count(&self, addr: &str) -> usize {
        self.policy
            .rcpt_seen
            .lock()
            .unwrap()
            .iter()
            .filter(|a| *a == addr)
            .count()
    }
}

/// A port nothing listens on (yet): SMTP "down".
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn session(stream: TcpStream, store: &Mutex<Vec<Received>>, policy: &Policy) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    out.write_all(b"220 test-smtp ESMTP\r\n")?;
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            out.write_all(b"250-test-smtp\r\n250 8BITMIME\r\n")?;
        } else if upper.starts_with("MAIL FROM") {
            rcpt.clear();
            if policy.tempfail.load(Ordering::SeqCst) {
                out.write_all(b"451 4.3.0 try again later\r\n")?;
            } else {
                out.write_all(b"250 OK\r\n")?;
            }
        } else if upper.starts_with("RCPT TO") {
            let addr = cmd
                .split_once(':')
                .map(|(_, a)| a.trim().trim_matches(|c| c == '<' || c == '>').to_string())
                .unwrap_or_default();
            policy.rcpt_seen.lock().unwrap().push(addr.clone());
            if policy.reject.lock().unwrap().contains(&addr) {
                out.write_all(b"550 5.1.1 no such user here\r\n")?;
            } else {
                rcpt.push(addr);
                out.write_all(b"250 OK\r\n")?;
            }
        } else if upper == "DATA" {
            policy.data_begun.fetch_add(1, Ordering::SeqCst);
            out.write_all(b"354 go ahead\r\n")?;
            let mut raw = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    let delay = policy.data_delay_ms.load(Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(delay));
                    break;
                }
                raw.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
            }
            store.lock().unwrap().push(Received {
                rcpt: std::mem::take(&mut rcpt),
                raw,
            });
            out.write_all(b"250 OK queued\r\n")?;
        } else if upper == "QUIT" {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"250 OK\r\n")?;
        }
    }
}

fn decode_words(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let between = &rest[..start];
        // Whitespace between two encoded words is not text (RFC 2047).
        if !(after_word && between.trim().is_empty()) {
            out.push_str(between);
        }
        after_word = true;
        let Some(end) = rest[start + 2..].find("?=").map(|e| start + 2 + e) else {
            break;
        };
        let word = &rest[start + 2..end];
        let mut it = word.splitn(3, '?');
        let (_, enc, text) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
        let bytes = if enc.eq_ignore_ascii_case("b") {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_default()
        } else {
            qp(&text.replace('_', " "))
        };
        out.push_str(&String::from_utf8_lossy(&bytes));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn qp(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if b.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let Some(h) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(h);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn decoded_parts(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in raw.split("\r\n--") {
        let Some((head, body)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let head_l = head.to_lowercase();
        if !head_l.contains("content-type: text/") {
            continue;
        }
        let body = body.split("\r\n--").next().unwrap_or(body);
        let bytes = if head_l.contains("content-transfer-encoding: base64") {
            base64::engine::general_purpose::STANDARD
                .decode(body.replace("\r\n", "").trim())
                .unwrap_or_default()
        } else if head_l.contains("content-transfer-encoding: quoted-printable") {
            qp(body)
        } else {
            body.as_bytes().to_vec()
        };
        out.push(String::from_utf8_lossy(&bytes).replace("\r\n", "\n"));
    }
    out
}
