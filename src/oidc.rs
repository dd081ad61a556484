//! Login through the region's identity provider: OpenID Connect, the
//! authorization code flow with PKCE (config `[oidc]`, docs/OPERATIONS.md).
//!
//! [`Oidc::begin`] gives the address to send the browser to, with a fresh
//! state, nonce and PKCE verifier that the caller keeps (in
//! `store::oidc`, single use). [`Oidc::finish`] trades the returned code for
//! the tokens and checks the ID token: signature against the issuer's keys,
//! issuer, audience, expiry and nonce (openidconnect's verifier). Only then
//! is the configured claim read from it. Who that claim names, and what they
//! may do, is svu-vakt's own business (`store::users::by_identity`).
//!
//! HTTP goes through ureq with rustls, never following a redirect (the
//! crate's SSRF warning), with the web PKI roots or the region's own CA.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};

/// Which field of a user the claim is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchBy {
    HsaId,
    Email,
}

impl MatchBy {
    pub fn parse(s: &str) -> Option<MatchBy> {
        match s {
            "hsa_id" => Some(MatchBy::HsaId),
            "email" => Some(MatchBy::Email),
            _ => None,
        }
    }
}

/// What to do with a person the identity provider vouches for but who is
/// no user here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Refused, with a message to ask an administrator.
    Refuse,
    /// Created as a handläggare with no unit: logged in, sees nothing until
    /// an administrator gives them units.
    Create,
}

/// `[oidc]`, checked.
#[derive(Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_url: String,
    /// The ID token claim that names the person (e.g. `email`, `hsa_id`).
    pub claim: String,
    pub match_by: MatchBy,
    /// With `claim = "email"`: refuse an e-mail not marked `email_verified: true`.
    pub require_verified_email: bool,
    pub unknown: Unknown,
    pub scopes: Vec<String>,
    /// The login page's button text.
    pub button: String,
    /// Extra CA certificates (PEM) to trust for the issuer, beside the web PKI.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("redirect_url", &self.redirect_url)
            .field("claim", &self.claim)
            .field("match_by", &self.match_by)
            .field("unknown", &self.unknown)
            .finish_non_exhaustive()
    }
}

/// Why a login through the identity provider failed. The text is for the
/// log; the person sees [`OidcError::for_person`].
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The identity provider could not be reached or answered nonsense.
    #[error("inloggningstjänsten: {0}")]
    Provider(String),
    /// The tokens did not pass the checks: a forged or stale login.
    #[error("ID-token avvisades: {0}")]
    Token(String),
    /// The ID token lacks the configured claim.
    #[error("ID-token saknar claim `{0}`")]
    NoClaim(String),
    /// The e-mail the person is matched on is not marked verified.
    #[error("ID-tokens e-post är inte markerad email_verified")]
    Unverified,
}

impl OidcError {
    pub fn for_person(&self) -> &'static str {
        match self {
            OidcError::Provider(_) => {
                "inloggningstjänsten svarar inte som den ska just nu; försök igen om en stund eller logga in med lösenord"
            }
            OidcError::Token(_) => "inloggningen kunde inte bekräftas; logga in igen",
            OidcError::NoClaim(_) => {
                "inloggningstjänsten skickade inte uppgiften som användare känns igen på; kontakta en administratör"
            }
            OidcError::Unverified => {
                "inloggningstjänsten har inte bekräftat din e-postadress, så den kan inte användas för att känna igen dig; kontakta en administratör"
            }
        }
    }
}

/// A login on its way to the identity provider: the caller keeps state,
/// nonce and verifier, and sends the browser to `url`.
pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// Who the identity provider says logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The configured claim's value, trimmed.
    pub value: String,
    /// The `email` claim, when given and not marked unverified.
    pub email: Option<String>,
}

pub struct Oidc {
    pub config: OidcConfig,
    agent: ureq::Agent,
}

impl Oidc {
    /// Checks the addresses and reads the CA file; nothing is fetched until
    /// the first login, so a provider that is down does not stop `serve`.
    pub fn new(config: OidcConfig) -> anyhow::Result<Oidc> {
        IssuerUrl::new(config.issuer.clone()).map_err(|e| anyhow::anyhow!("oidc.issuer: {e}"))?;
        RedirectUrl::new(config.redirect_url.clone()).map_err(|e| anyhow::anyhow!("oidc.redirect_url: {e}"))?;
        let mut builder = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("svu-vakt/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            builder = builder.tls_config(Arc::new(tls_with(path)?));
        }
        Ok(Oidc {
            config,
            agent: builder.build(),
        })
    }

    fn http(&self, request: openidconnect::HttpRequest) -> Result<openidconnect::HttpResponse, HttpError> {
        let url = request.uri().to_string();
        let mut req = self.agent.request(request.method().as_str(), &url);
        for (name, value) in request.headers() {
            let value = value
                .to_str()
                .map_err(|_| HttpError(format!("huvudet {name} är inte text")))?;
            req = req.set(name.as_str(), value);
        }
        let answer = if request.body().is_empty() {
            req.call()
        } else {
            req.send_bytes(request.body())
        };
        // An error status is the provider's answer too: the crate reads its
        // error body (`invalid_grant` and the like).
        let response = match answer {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(HttpError(format!("{url}: {e}"))),
        };
        let mut builder = openidconnect::http::Response::builder().status(response.status());
        if let Some(ct) = response.header("Content-Type") {
            builder = builder.header("Content-Type", ct);
        }
        let mut body = Vec::new();
        response
            .into_reader()
            .take(1024 * 1024)
            .read_to_end(&mut body)
            .map_err(|e| HttpError(format!("{url}: {e}")))?;
        builder.body(body).map_err(|e| HttpError(e.to_string()))
    }

    /// The issuer's metadata and keys, fetched for each step: logins are
    /// few, and a rotated key is then seen at once.
    fn metadata(&self) -> Result<CoreProviderMetadata, OidcError> {
        let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(|e| OidcError::Provider(e.to_string()))?;
        let http = |r| self.http(r);
        CoreProviderMetadata::discover(&issuer, &http).map_err(|e| OidcError::Provider(chain(&e)))
    }

    fn redirect(&self) -> Result<RedirectUrl, OidcError> {
        RedirectUrl::new(self.config.redirect_url.clone()).map_err(|e| OidcError::Provider(e.to_string()))
    }

    /// A new login: where to send the browser, and what to keep until it returns.
    pub fn begin(&self) -> Result<Started, OidcError> {
        let client = CoreClient::from_provider_metadata(
            self.metadata()?,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(self.redirect()?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in self.config.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
        })
    }

    /// Trades the code for tokens and checks the ID token against the nonce
    /// kept at [`Oidc::begin`]; then reads who it names.
    pub fn finish(&self, code: &str, verifier: &str, nonce: &str) -> Result<Identity, OidcError> {
        let client = CoreClient::from_provider_metadata(
            self.metadata()?,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(self.redirect()?);
        let http = |r| self.http(r);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .request(&http)
            .map_err(|e| OidcError::Provider(chain(&e)))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| OidcError::Token("tokensvaret saknar id_token".into()))?;
        id_token
            .claims(&client.id_token_verifier(), &Nonce::new(nonce.to_string()))
            .map_err(|e| OidcError::Token(chain(&e)))?;
        // Verified: the same compact token's payload, read for any claim.
        let raw = serde_json::to_value(id_token).map_err(|e| OidcError::Token(e.to_string()))?;
        let claims = payload(raw.as_str().unwrap_or_default())?;
        let value =
            claim_text(&claims, &self.config.claim).ok_or_else(|| OidcError::NoClaim(self.config.claim.clone()))?;
        // An e-mail the IdP has not verified may be anyone's (some let the
        // person set it): not a name to know someone by.
        let verified = claims.get("email_verified") == Some(&serde_json::Value::Bool(true));
        if self.config.claim == "email" && self.config.require_verified_email && !verified {
            return Err(OidcError::Unverified);
        }
        let email = verified.then(|| claim_text(&claims, "email")).flatten();
        Ok(Identity { value, email })
    }
}

#[derive(Debug)]
struct HttpError(String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The claims of a compact JWT (its signature already checked).
fn payload(jwt: &str) -> Result<serde_json::Map<String, serde_json::Value>, OidcError> {
    let part = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::Token("ID-token är ingen kompakt JWT".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| OidcError::Token(format!("ID-tokens innehåll: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| OidcError::Token(format!("ID-tokens innehåll: {e}")))
}

/// A claim as text: a string, or a number; never empty.
fn claim_text(claims: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        serde_json::Value::String(s) => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

/// rustls trusting the web PKI and the certificates in `path`.
fn tls_with(path: &std::path::Path) -> anyhow::Result<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut added = 0;
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("oidc.ca_file {}: {e}", path.display()))?
    {
        let cert = cert.map_err(|e| anyhow::anyhow!("oidc.ca_file {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| anyhow::anyhow!("oidc.ca_file {}: {e}", path.display()))?;
        added += 1;
    }
    anyhow::ensure!(
        added > 0,
        "oidc.ca_file {}: filen innehåller inget certifikat",
        path.display()
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let enc = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.sig", enc(&serde_json::json!({"alg": "RS256"})), enc(&claims))
    }

    #[test]
    fn a_claim_is_read_as_text_and_an_empty_or_structured_one_is_none() {
        let c = payload(&jwt(serde_json::json!({
            "hsa_id": " SE2321000016-1234 ", "n": 7, "empty": "", "list": ["a"]
        })))
        .unwrap_or_default();
        assert_eq!(claim_text(&c, "hsa_id").as_deref(), Some("SE2321000016-1234"));
        assert_eq!(claim_text(&c, "n").as_deref(), Some("7"));
        assert_eq!(claim_text(&c, "empty"), None);
        assert_eq!(claim_text(&c, "list"), None);
        assert_eq!(claim_text(&c, "missing"), None);
        assert!(payload("no-dots").is_err());
    }

    #[test]
    fn match_by_names_are_exact() {
        assert_eq!(MatchBy::parse("hsa_id"), Some(MatchBy::HsaId));
        assert_eq!(MatchBy::parse("email"), Some(MatchBy::Email));
        assert_eq!(MatchBy::parse("Email"), None);
    }
}
