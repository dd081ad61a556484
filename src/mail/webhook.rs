//! A report into the huvudman's own deviation system (SPEC §6.0): one JSON
//! document POSTed to the route's URL, signed with HMAC-SHA256 over the body
//! under the route's secret, with an idempotency key the receiver can drop a
//! repeat by. Only the sending is here; the outbox decides when, and what a
//! refusal means for the row (`mail::delivery`).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What became of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the receiver has it.
    Accepted,
    /// No answer, a dropped connection, 5xx or 429: try again later.
    Retry(String),
    /// Any other answer (4xx, a redirect): retrying would not help.
    Refused(String),
}

/// `sha256=<hex>` of the body under the secret.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` never refuses one.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// An http or https URL with a host and without a user or password (the
/// secret belongs in the secret, not in a URL that is shown to admins).
pub fn check_url(url: &str) -> Result<(), String> {
    let u = openidconnect::url::Url::parse(url).map_err(|e| format!("`{url}` är ingen URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("ska börja med https:// (eller http://), inte {}:", u.scheme()));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("saknar värddator".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("får inte innehålla användarnamn eller lösenord; hemligheten anges i webhook_secret_file".into());
    }
    if u.fragment().is_some() {
        return Err("får inte ha ett #fragment".into());
    }
    Ok(())
}

/// The URL as logs, notices and the admins' list show it: without its
/// query string, which some receivers use for a token of their own.
pub fn shown(url: &str) -> String {
    match openidconnect::url::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "(ogiltig URL)".into(),
    }
}

/// POSTs `body` to `url`. Redirects are not followed: a receiver that moved
/// is a configuration to fix, not a place to send patient-adjacent data to.
pub fn post(url: &str, secret: &[u8], idempotency_key: &str, body: &str, timeout: Duration) -> Outcome {
    let agent = ureq::AgentBuilder::new().timeout(timeout).redirects(0).build();
    let answer = agent
        .post(url)
        .set("Content-Type", "application/json")
        .set("X-Svu-Vakt-Signature", &signature(secret, body.as_bytes()))
        .set("Idempotency-Key", idempotency_key)
        .send_string(body);
    match answer {
        Ok(r) if (200..300).contains(&r.status()) => Outcome::Accepted,
        Ok(r) => Outcome::Refused(format!("mottagaren svarade {} {}", r.status(), r.status_text())),
        Err(ureq::Error::Status(code, r)) if code == 429 || code >= 500 => {
            Outcome::Retry(format!("mottagaren svarade {code} {}", r.status_text()))
        }
        Err(ureq::Error::Status(code, r)) => Outcome::Refused(format!("mottagaren svarade {code} {}", r.status_text())),
        Err(ureq::Error::Transport(t)) => Outcome::Retry(format!("ingen kontakt med mottagaren: {t}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_with_a_host_and_no_credentials_are_taken() {
        assert!(check_url("https://avvikelser.kommun.example.se/svu").is_ok());
        assert!(check_url("http://127.0.0.1:8081/in?token=x").is_ok());
        for bad in [
            "ftp://x.example.se/",
            "avvikelser.example.se",
            "https://user:pw@x.example.se/",
            "https://x.example.se/#a",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert_eq!(shown("https://x.example.se/in?token=hemlig"), "https://x.example.se/in");
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
