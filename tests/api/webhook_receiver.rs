//! A real HTTP receiver over TCP for the webhook tests, the counterpart of
//! the test SMTP server: it reads each POST whole, keeps its headers and
//! body, and answers as the test says — a status (200, 429, 500, 400 …),
//! no answer at all (hang), or a dropped connection.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// Reads the request and never answers (until the client gives up).
    Hang,
    /// Reads the request and closes the connection without a word.
    Drop,
}

pub struct Receiver {
    pub port: u16,
    /// Every request read whole, in order, whatever was answered.
    pub received: Arc<Mutex<Vec<Delivery>>>,
    /// The answers to the next requests; when empty, `fallback`.
    pub script: Arc<Mutex<VecDeque<Answer>>>,
    pub fallback: Arc<Mutex<Answer>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let fallback = Arc::new(Mutex::new(Answer::Status(200)));
        let (r, s, f) = (received.clone(), script.clone(), fallback.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, s, f) = (r.clone(), s.clone(), f.clone());
                std::thread::spawn(move || serve(stream, &r, &s, &f));
            }
        });
        Receiver {
            port,
            received,
            script,
            fallback,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/avvikelser", self.port)
    }

    pub fn answer_next(&self, answers: &[Answer]) {
        self.script.lock().unwrap().extend(answers.iter().copied());
    }

    pub fn answer_always(&self, a: Answer) {
        *self.fallback.lock().unwrap() = a;
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    received: &Mutex<Vec<Delivery>>,
    script: &Mutex<VecDeque<Answer>>,
    fallback: &Mutex<Answer>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    received.lock().unwrap().push(Delivery {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let answer = script.lock().unwrap().pop_front().unwrap_or(*fallback.lock().unwrap());
    let mut stream = stream;
    match answer {
        Answer::Status(code) => {
            let reply = format!("HTTP/1.1 {code} Svar\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(reply.as_bytes());
        }
        Answer::Hang => std::thread::sleep(Duration::from_secs(120)),
        Answer::Drop => {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}
