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
    fn the_signature_is_hmac_sha256_over_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
