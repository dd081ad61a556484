//! A small W3C WebDriver client over HTTP (ureq), driving headless Chromium
//! through Debian's `chromedriver`. The browser tests run when
//! `SVU_VAKT_TEST_BROWSER` is set (`.ci/run` sets it and installs
//! `chromium` and `chromium-driver`); otherwise they say they are skipped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub fn enabled() -> bool {
    std::env::var("SVU_VAKT_TEST_BROWSER").is_ok_and(|v| !v.is_empty() && v != "0")
}

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn try_call(method: &str, url: &str, body: Option<Value>) -> Result<Value, String> {
    let req = ureq::request(method, url).timeout(Duration::from_secs(60));
    let result = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            let text = r.into_string().unwrap_or_default();
            return Err(format!("webdriver {method} {url}: {code} {text}"));
        }
        Err(e) => return Err(format!("webdriver {method} {url}: {e}")),
    };
    let v: Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
    Ok(v["value"].clone())
}

fn call(method: &str, url: &str, body: Option<Value>) -> Value {
    try_call(method, url, body).unwrap_or_else(|e| panic!("{e}"))
}

impl Browser {
    pub fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian: apt-get install chromium chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Ok(r) = ureq::get(&format!("{base}/status")).call() {
                let v: Value = r.into_json().unwrap_or_default();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-component-update", "--no-first-run",
                         "--window-size=1280,1000",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let v = call("POST", &format!("{base}/session"), Some(caps));
        let session = v["sessionId"].as_str().expect("a webdriver session").to_string();
        Browser {
            driver,
            base,
            session,
            _profile: profile,
        }
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/session/{}{tail}", self.base, self.session)
    }

    pub fn goto(&self, url: &str) {
        call("POST", &self.url("/url"), Some(json!({"url": url})));
    }

    pub fn current_url(&self) -> String {
        call("GET", &self.url("/url"), None).as_str().unwrap().to_string()
    }

    pub fn source(&self) -> String {
        call("GET", &self.url("/source"), None).as_str().unwrap().to_string()
    }

    /// The first element matching the CSS selector; panics when there is none.
    pub fn find(&self, css: &str) -> String {
        let v = call(
            "POST",
            &self.url("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    pub fn count(&self, css: &str) -> usize {
        let v = call(
            "POST",
            &self.url("/elements"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array().map_or(0, Vec::len)
    }

    pub fn click(&self, css: &str) {
        let el = self.find(css);
        call("POST", &self.url(&format!("/element/{el}/click")), Some(json!({})));
    }

    /// Clicks something that loads a new page (a link, a submit button) and
    /// waits until the new page has loaded.
    pub fn click_and_wait(&self, css: &str) {
        let old = self.find("html");
        self.click(css);
        let started = Instant::now();
        let html = json!({"using": "css selector", "value": "html"});
        let state = json!({"script": "return document.readyState", "args": []});
        loop {
            // While the next page loads, the driver may answer with an error: look again.
            let now = try_call("POST", &self.url("/element"), Some(html.clone()));
            let ready = try_call("POST", &self.url("/execute/sync"), Some(state.clone()));
            if let (Ok(now), Ok(ready)) = (now, ready) {
                if now[ELEMENT].as_str().is_some_and(|id| id != old) && ready == "complete" {
                    return;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no new page after clicking {css}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        call("POST", &self.url(&format!("/element/{el}/clear")), Some(json!({})));
        call(
            "POST",
            &self.url(&format!("/element/{el}/value")),
            Some(json!({"text": text})),
        );
    }

    /// Chooses the `<option>` with this value in a `<select>`.
    pub fn select(&self, select_css: &str, value: &str) {
        self.click(&format!("{select_css} option[value=\"{value}\"]"));
    }

    pub fn text(&self, css: &str) -> String {
        let el = self.find(css);
        call("GET", &self.url(&format!("/element/{el}/text")), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The basic checks an accessibility checker makes, in the page itself:
    /// the language is Swedish, there is one `h1`, every visible form
    /// control has a label (or `aria-label`), every image a text
    /// alternative, every table header a scope. Panics with what is wrong.
    pub fn assert_accessible(&self) {
        let script = r#"
            const problems = [];
            if (document.documentElement.lang !== 'sv') problems.push('lang is not sv');
            if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
            for (const el of document.querySelectorAll('input, select, textarea')) {
                if (el.type === 'hidden') continue;
                const labelled = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label');
                if (!labelled) problems.push('unlabelled ' + el.tagName + ' ' + (el.name || el.id));
            }
            for (const img of document.querySelectorAll('img')) {
                if (!img.hasAttribute('alt')) problems.push('image without alt');
            }
            for (const th of document.querySelectorAll('thead th')) {
                if (!th.getAttribute('scope')) problems.push('th without scope: ' + th.textContent);
            }
            for (const b of document.querySelectorAll('button, a')) {
                if (!b.textContent.trim() && !b.getAttribute('aria-label')) problems.push('empty ' + b.tagName);
            }
            return problems;
        "#;
        let v = call(
            "POST",
            &self.url("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        );
        let problems: Vec<String> = serde_json::from_value(v).unwrap();
        assert!(problems.is_empty(), "{}: {problems:?}", self.current_url());
    }

    /// A PNG of the page under `target/screenshots/NAME.png`.
    pub fn screenshot(&self, name: &str) {
        self.assert_accessible();
        let v = call("GET", &self.url("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
