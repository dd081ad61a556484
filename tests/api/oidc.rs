//! Login through an identity provider: a small OpenID Connect issuer that
//! the test runs itself on a real port (discovery, keys, authorize, token),
//! signing real RS256 ID tokens, and svu-vakt talking to it over HTTP. The
//! issuer checks what a real one checks (client secret, PKCE, single-use
//! codes) and can misbehave on request: another key, another audience, an
//! expired token, another login's nonce.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::Engine;
use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use svu_vakt::oidc::{MatchBy, OidcConfig, Unknown};
use svu_vakt::store::tokens::Role;
use svu_vakt::store::users;

use crate::handling::create_user;
use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::on_both;
use crate::smtp::free_port;

const CLIENT_ID: &str = "svu-vakt";
const CLIENT_SECRET: &str = "klienthemlighet-for-test";
const HSA_ID: &str = "SE2321000016-A1B2";

/// How the issuer's next ID token goes wrong, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Good,
    /// Signed with a key the issuer does not publish.
    WrongKey,
    /// Issued to another client.
    WrongAudience,
    /// Expired an hour ago.
    Expired,
    /// Carries another login's nonce (a token replayed into this login).
    WrongNonce,
}

struct Code {
    nonce: String,
    challenge: String,
    redirect: String,
}

struct IssuerState {
    mode: Mode,
    /// The claims the next ID token carries beside the protocol's own.
    person: Value,
    codes: HashMap<String, Code>,
    next_code: u32,
    tokens_issued: u32,
}

struct Issuer {
    base: String,
    state: Arc<Mutex<IssuerState>>,
}

fn key(name: &str) -> CoreRsaPrivateSigningKey {
    let pem = std::fs::read_to_string(format!("{}/tests/fixtures/oidc/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    CoreRsaPrivateSigningKey::from_pem(&pem, Some(JsonWebKeyId::new("k1".into()))).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Issuer {
    fn start() -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = Arc::new(Mutex::new(IssuerState {
            mode: Mode::Good,
            person: json!({"hsa_id": HSA_ID, "email": "anna.berg@region.example.se", "email_verified": true}),
            codes: HashMap::new(),
            next_code: 0,
            tokens_issued: 0,
        }));
        let (st, b) = (state.clone(), base.clone());
        std::thread::spawn(move || {
            let good = key("issuer-key.pem");
            let other = key("other-key.pem");
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &b, &st, &good, &other);
            }
        });
        Issuer { base, state }
    }

    fn set(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    fn person(&self, claims: Value) {
        self.state.lock().unwrap().person = claims;
    }

    fn tokens_issued(&self) -> u32 {
        self.state.lock().unwrap().tokens_issued
    }
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: String,
}

fn form(s: &str) -> HashMap<String, String> {
    openidconnect::url::form_urlencoded::parse(s.as_bytes())
        .into_owned()
        .collect()
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Ok(Request {
        method,
        path: path.to_string(),
        query: form(query),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn respond(mut stream: &TcpStream, status: &str, headers: &[(&str, &str)], body: &str) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    stream.write_all(out.as_bytes())
}

fn serve(
    stream: TcpStream,
    base: &str,
    state: &Mutex<IssuerState>,
    good: &CoreRsaPrivateSigningKey,
    other: &CoreRsaPrivateSigningKey,
) -> std::io::Result<()> {
    let req = read_request(&stream)?;
    let json_type = [("Content-Type", "application/json")];
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/.well-known/openid-configuration") => {
            let doc = json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "jwks_uri": format!("{base}/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            });
            respond(&stream, "200 OK", &json_type, &doc.to_string())
        }
        ("GET", "/jwks") => {
            let keys = json!({"keys": [good.as_verification_key()]});
            respond(&stream, "200 OK", &json_type, &keys.to_string())
        }
        ("GET", "/authorize") => {
            let q = &req.query;
            let ok = q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                && q.get("response_type").map(String::as_str) == Some("code")
                && q.get("code_challenge_method").map(String::as_str) == Some("S256")
                && q.get("scope").is_some_and(|s| s.split(' ').any(|x| x == "openid"));
            if !ok {
                return respond(&stream, "400 Bad Request", &[], "bad authorization request");
            }
            let mut st = state.lock().unwrap();
            st.next_code += 1;
            let code = format!("kod-{}", st.next_code);
            let redirect = q["redirect_uri"].clone();
            st.codes.insert(
                code.clone(),
                Code {
                    nonce: q["nonce"].clone(),
                    challenge: q["code_challenge"].clone(),
                    redirect: redirect.clone(),
                },
            );
            let to = format!(
                "{redirect}?code={code}&state={}",
                openidconnect::url::form_urlencoded::byte_serialize(q["state"].as_bytes()).collect::<String>()
            );
            respond(&stream, "302 Found", &[("Location", &to)], "")
        }
        ("POST", "/token") => {
            let f = form(&req.body);
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
            );
            let mut st = state.lock().unwrap();
            let code = f.get("code").and_then(|c| st.codes.remove(c));
            let grant_error = |why: &str| json!({"error": "invalid_grant", "error_description": why}).to_string();
            let Some(code) = code else {
                return respond(
                    &stream,
                    "400 Bad Request",
                    &json_type,
                    &grant_error("unknown or used code"),
                );
            };
            if req.headers.get("authorization") != Some(&basic) {
                return respond(
                    &stream,
                    "401 Unauthorized",
                    &json_type,
                    &json!({"error": "invalid_client"}).to_string(),
                );
            }
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            if b64(&Sha256::digest(verifier.as_bytes())) != code.challenge {
                return respond(
                    &stream,
                    "400 Bad Request",
                    &json_type,
                    &grant_error("PKCE verifier does not match"),
                );
            }
            if f.get("redirect_uri") != Some(&code.redirect) {
                return respond(
                    &stream,
                    "400 Bad Request",
                    &json_type,
                    &grant_error("redirect_uri differs"),
                );
            }
            let now = chrono::Utc::now().timestamp();
            let mut claims = json!({
                "iss": base, "sub": "person-1", "aud": CLIENT_ID,
                "iat": now, "exp": now + 300, "nonce": code.nonce,
            });
            match st.mode {
                Mode::WrongAudience => claims["aud"] = json!("ett-annat-system"),
                Mode::Expired => {
                    claims["iat"] = json!(now - 7200);
                    claims["exp"] = json!(now - 3600);
                }
                Mode::WrongNonce => claims["nonce"] = json!("en-annan-inloggnings-nonce"),
                Mode::Good | Mode::WrongKey => {}
            }
            if let (Some(c), Some(p)) = (claims.as_object_mut(), st.person.as_object()) {
                c.extend(p.clone());
            }
            let signer = if st.mode == Mode::WrongKey { other } else { good };
            let signing = format!(
                "{}.{}",
                b64(json!({"alg": "RS256", "typ": "JWT", "kid": "k1"})
                    .to_string()
                    .as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let signature = signer
                .sign(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, signing.as_bytes())
                .unwrap();
            st.tokens_issued += 1;
            let answer = json!({
                "access_token": format!("at-{}", st.tokens_issued), "token_type": "Bearer",
                "expires_in": 300, "id_token": format!("{signing}.{}", b64(&signature)),
            });
            respond(&stream, "200 OK", &json_type, &answer.to_string())
        }
        _ => respond(&stream, "404 Not Found", &[], "not found"),
    }
}

/// An application that logs people in through `issuer`, answering on a
/// port chosen first so that the redirect address is its own.
fn app_for(b: Backend, issuer: &Issuer, by: MatchBy, unknown: Unknown) -> TestApp {
    let port = free_port();
    let oidc = OidcConfig {
        issuer: issuer.base.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        redirect_url: format!("http://127.0.0.1:{port}/login/oidc/retur"),
        claim: match by {
            MatchBy::HsaId => "hsa_id".into(),
            MatchBy::Email => "email".into(),
        },
        match_by: by,
        require_verified_email: true,
        unknown,
        scopes: vec!["openid".into(), "email".into()],
        button: "Logga in med SITHS".into(),
        ca_file: None,
    };
    let app = spawn_app_with(b, |c| {
        c.listen = format!("127.0.0.1:{port}");
        c.oidc = Some(oidc);
    });
    assert_eq!(app.post_units(crate::helpers::UNITS).status, 200);
    app
}

/// One answer, redirects not followed.
struct Answer {
    status: u16,
    location: String,
    cookies: Vec<String>,
    body: String,
}

fn get(url: &str, cookie: Option<&str>) -> Answer {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut req = agent.get(url);
    if let Some(c) = cookie {
        req = req.set("Cookie", c);
    }
    let resp = match req.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let cookies = resp
        .all("Set-Cookie")
        .iter()
        .map(|c| c.split(';').next().unwrap_or_default().to_string())
        .collect();
    Answer {
        status: resp.status(),
        location: resp.header("Location").unwrap_or_default().to_string(),
        cookies,
        body: resp.into_string().unwrap_or_default(),
    }
}

impl Answer {
    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")) && c.len() > name.len() + 1)
            .cloned()
    }
}

/// A browser's way through a login: to the issuer and back. Answers the
/// return, with the state cookie and the return address for a replay.
struct Login {
    back: Answer,
    state_cookie: String,
    return_url: String,
}

fn log_in(app: &TestApp, next: &str) -> Login {
    let start = get(&format!("{}/login/oidc{next}", app.base), None);
    assert_eq!(start.status, 303, "{}", start.body);
    let state_cookie = start.cookie("svu_oidc").expect("a state cookie");
    assert!(start.location.starts_with("http://127.0.0.1"), "{}", start.location);
    let at_issuer = get(&start.location, None);
    assert_eq!(at_issuer.status, 302, "{}", at_issuer.body);
    let back = get(&at_issuer.location, Some(&state_cookie));
    Login {
        back,
        state_cookie,
        return_url: at_issuer.location,
    }
}

fn who(app: &TestApp, session: &str) -> Value {
    let r = get(&format!("{}/api/v1/session", app.base), Some(session));
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

/// A user with the issuer's HSA-id, typed in lower case as an
/// administrator might: stored and compared in capitals.
fn hsa_user(app: &TestApp, name: &str, units: &[&str]) {
    create_user(app, name, Role::Handlaggare, units);
    let change = users::Change {
        hsa_id: Some(Some(HSA_ID.to_lowercase())),
        ..Default::default()
    };
    users::update(&mut app.conn(), name, &change).unwrap();
}

fn a_person_known_by_hsa_id_logs_in_and_the_return_cannot_be_used_again(b: Backend) {
    let issuer = Issuer::start();
    let app = app_for(b, &issuer, MatchBy::HsaId, Unknown::Refuse);
    hsa_user(&app, "anna.avd1", &["AVD1"]);
    let page = get(&format!("{}/login?next=/avvikelser%3Fstatus%3Dny", app.base), None);
    assert!(page.body.contains("Logga in med SITHS"), "{}", page.body);
    assert!(
        page.body.contains("/login/oidc?next=/avvikelser%3Fstatus%3Dny"),
        "{}",
        page.body
    );

    let login = log_in(&app, "?next=/avvikelser%3Fstatus%3Dny");
    assert_eq!(login.back.status, 303, "{}", login.back.body);
    assert_eq!(
        login.back.location, "/avvikelser?status=ny",
        "back where the person was going"
    );
    let session = login.back.cookie("svu_session").expect("a session");
    let me = who(&app, &session);
    assert_eq!(me["username"], "anna.avd1");
    assert_eq!(me["units"], json!(["AVD1"]), "roles and units are svu-vakt's own");
    assert_eq!(issuer.tokens_issued(), 1);

    // The same return again (a replay from history or a proxy log): refused
    // before the identity provider is asked, and no second session.
    let again = get(&login.return_url, Some(&login.state_cookie));
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("redan använts"), "{}", again.body);
    assert!(again.cookie("svu_session").is_none());
    assert_eq!(issuer.tokens_issued(), 1);

    // A return in a browser that did not begin the login (login CSRF).
    let start = get(&format!("{}/login/oidc", app.base), None);
    let at_issuer = get(&start.location, None);
    let elsewhere = get(&at_issuer.location, None);
    assert_eq!(elsewhere.status, 400, "{}", elsewhere.body);
    assert!(elsewhere.body.contains("påbörjades inte i den här webbläsaren"));
    assert!(elsewhere.cookie("svu_session").is_none());

    // A disabled account cannot come in this way either.
    users::disable(&mut app.conn(), "anna.avd1").unwrap();
    let disabled = log_in(&app, "").back;
    assert_eq!(disabled.status, 403, "{}", disabled.body);
    assert!(disabled.body.contains("avstängt"), "{}", disabled.body);
    assert!(disabled.cookie("svu_session").is_none());
}

fn tokens_that_do_not_hold_give_no_session(b: Backend) {
    let issuer = Issuer::start();
    let app = app_for(b, &issuer, MatchBy::HsaId, Unknown::Create);
    for (mode, what) in [
        (Mode::WrongKey, "signed with another key"),
        (Mode::WrongAudience, "issued to another client"),
        (Mode::Expired, "expired"),
        (Mode::WrongNonce, "another login's nonce"),
    ] {
        issuer.set(mode);
        let back = log_in(&app, "").back;
        assert_eq!(back.status, 401, "{what}: {}", back.body);
        assert!(back.body.contains("kunde inte bekräftas"), "{what}: {}", back.body);
        assert!(back.cookie("svu_session").is_none(), "{what}: no session");
    }
    assert_eq!(issuer.tokens_issued(), 4, "each was a real token from the issuer");
    let made = users::list(&mut app.conn()).unwrap();
    assert!(made.is_empty(), "no user was created from a refused token: {made:?}");

    // The issuer has no such person's claim: refused, nothing created.
    issuer.set(Mode::Good);
    issuer.person(json!({"email": "utan.hsa@region.example.se"}));
    let back = log_in(&app, "").back;
    assert_eq!(back.status, 401, "{}", back.body);
    assert!(back.body.contains("kontakta en administratör"), "{}", back.body);

    // The provider says no (the person cancelled): a message, no session.
    let start = get(&format!("{}/login/oidc", app.base), None);
    let state: String = openidconnect::url::Url::parse(&start.location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let cancelled = get(
        &format!(
            "{}/login/oidc/retur?error=access_denied&state={}",
            app.base,
            openidconnect::url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
        ),
        Some(&start.cookie("svu_oidc").unwrap()),
    );
    assert_eq!(cancelled.status, 401, "{}", cancelled.body);
    assert!(cancelled.body.contains("loggade inte in dig"), "{}", cancelled.body);
}

fn an_unknown_person_is_refused_or_created_without_scope_as_configured(b: Backend) {
    let issuer = Issuer::start();
    let refusing = app_for(b, &issuer, MatchBy::HsaId, Unknown::Refuse);
    let back = log_in(&refusing, "").back;
    assert_eq!(back.status, 403, "{}", back.body);
    assert!(back.body.contains("inte upplagd som användare"), "{}", back.body);
    assert!(
        back.body.contains(HSA_ID),
        "the person sees what to give the administrator"
    );
    assert!(users::list(&mut refusing.conn()).unwrap().is_empty());

    let creating = app_for(b, &issuer, MatchBy::HsaId, Unknown::Create);
    let back = log_in(&creating, "").back;
    assert_eq!(back.status, 303, "{}", back.body);
    let session = back.cookie("svu_session").unwrap();
    let made = users::list(&mut creating.conn()).unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(
        (
            made[0].username.as_str(),
            made[0].role.as_str(),
            made[0].hsa_id.as_deref()
        ),
        (HSA_ID, "handlaggare", Some(HSA_ID))
    );
    assert!(made[0].units.is_empty());
    assert_eq!(made[0].email.as_deref(), Some("anna.berg@region.example.se"));
    // Logged in, with no scope: sees nothing until given units.
    let list = get(&format!("{}/api/v1/deviations", creating.base), Some(&session));
    assert_eq!(list.status, 403, "{}", list.body);
    // No password was made for it: a password login with anything fails.
    let refused = ureq::post(&format!("{}/api/v1/session", creating.base))
        .set("Content-Type", "application/json")
        .send_string(&json!({"username": HSA_ID, "password": "!oidc"}).to_string());
    assert!(matches!(refused, Err(ureq::Error::Status(401, _))));

    // An administrator gives units: the next login sees them (the change
    // ended the old session).
    let change = users::Change {
        units: Some(vec!["AVD1".into()]),
        ..Default::default()
    };
    users::update(&mut creating.conn(), HSA_ID, &change).unwrap();
    let ended = get(&format!("{}/api/v1/session", creating.base), Some(&session));
    assert_eq!(ended.status, 401, "a change of units ends the sessions");
    let again = log_in(&creating, "").back;
    let session = again.cookie("svu_session").unwrap();
    assert_eq!(who(&creating, &session)["units"], json!(["AVD1"]));
    assert_eq!(
        users::list(&mut creating.conn()).unwrap().len(),
        1,
        "the same user, not a second"
    );
    let list = get(&format!("{}/api/v1/deviations", creating.base), Some(&session));
    assert_eq!(list.status, 200, "{}", list.body);
}

fn a_person_is_found_by_e_mail_without_regard_to_case(b: Backend) {
    let issuer = Issuer::start();
    let app = app_for(b, &issuer, MatchBy::Email, Unknown::Refuse);
    svu_vakt::store::users::create(
        &mut app.conn(),
        "bo.k1",
        crate::handling::PASSWORD,
        Role::Handlaggare,
        &["K1".into()],
        Some("Bo.Lind@Kommun.example.se"),
    )
    .unwrap();
    // An e-mail the IdP has not verified, or does not say it has: not
    // enough to be known by.
    for unverified in [
        json!({"email": "bo.lind@kommun.example.se", "email_verified": false}),
        json!({"email": "bo.lind@kommun.example.se"}),
    ] {
        issuer.person(unverified.clone());
        let back = log_in(&app, "").back;
        assert_eq!(back.status, 401, "{unverified}: {}", back.body);
        assert!(back.body.contains("inte bekräftat din e-postadress"), "{}", back.body);
        assert!(back.cookie("svu_session").is_none());
    }
    issuer.person(json!({"email": "bo.lind@kommun.example.se", "email_verified": true}));
    let back = log_in(&app, "").back;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(who(&app, &back.cookie("svu_session").unwrap())["username"], "bo.k1");

    // Two users with that e-mail: neither is chosen.
    svu_vakt::store::users::create(
        &mut app.conn(),
        "bo.k1.gammal",
        crate::handling::PASSWORD,
        Role::Handlaggare,
        &["K1".into()],
        Some("bo.lind@kommun.example.se"),
    )
    .unwrap();
    let back = log_in(&app, "").back;
    assert_eq!(back.status, 403, "{}", back.body);
    assert!(back.body.contains("flera användare"), "{}", back.body);
}

on_both!(
    a_person_known_by_hsa_id_logs_in_and_the_return_cannot_be_used_again,
    tokens_that_do_not_hold_give_no_session,
    an_unknown_person_is_refused_or_created_without_scope_as_configured,
    a_person_is_found_by_e_mail_without_regard_to_case,
);

#[test]
fn an_identity_provider_that_is_down_gives_a_message_and_password_login_still_works() {
    let port = free_port();
    let dead = free_port();
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.listen = format!("127.0.0.1:{port}");
        c.oidc = Some(OidcConfig {
            issuer: format!("http://127.0.0.1:{dead}"),
            client_id: CLIENT_ID.into(),
            client_secret: None,
            redirect_url: format!("http://127.0.0.1:{port}/login/oidc/retur"),
            claim: "email".into(),
            match_by: MatchBy::Email,
            require_verified_email: true,
            unknown: Unknown::Refuse,
            scopes: vec!["openid".into()],
            button: "Logga in med SITHS".into(),
            ca_file: None,
        });
    });
    let start = get(&format!("{}/login/oidc", app.base), None);
    assert_eq!(start.status, 503, "{}", start.body);
    assert!(start.body.contains("svarar inte"), "{}", start.body);
    assert!(start.body.contains("Lösenord"), "the password form is still there");
    assert_eq!(app.post_units(crate::helpers::UNITS).status, 200);
    create_user(&app, "anna.avd1", Role::Handlaggare, &["AVD1"]);
    let s = crate::handling::Session::login(&app, "anna.avd1");
    assert!(!s.csrf.is_empty());
}

#[test]
fn without_oidc_the_login_page_has_no_button_and_the_path_says_so() {
    let app = crate::helpers::spawn_app(Backend::Sqlite);
    let page = get(&format!("{}/login", app.base), None);
    assert!(!page.body.contains("/login/oidc"), "{}", page.body);
    let start = get(&format!("{}/login/oidc", app.base), None);
    assert_eq!(start.status, 404);
    assert!(start.body.contains("inte inställd"), "{}", start.body);
}

/// The same login in headless Chromium: the button on the login page, the
/// issuer's redirect, the state cookie sent back on the return, and the
/// person where they were going.
#[test]
fn a_person_logs_in_through_the_identity_provider_in_a_browser() {
    if !crate::webdriver::enabled() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "oidc::a_person_logs_in_through_the_identity_provider_in_a_browser skipped: SVU_VAKT_TEST_BROWSER is not set"
        );
        return;
    }
    let issuer = Issuer::start();
    let app = app_for(Backend::Sqlite, &issuer, MatchBy::HsaId, Unknown::Refuse);
    hsa_user(&app, "anna.avd1", &["AVD1"]);
    let browser = crate::webdriver::Browser::start();
    browser.goto(&format!("{}/avvikelser?status=ny", app.base));
    assert!(
        browser.current_url().contains("/login?next="),
        "{}",
        browser.current_url()
    );
    assert_eq!(browser.text("#oidc-login"), "Logga in med SITHS");
    browser.assert_accessible();
    browser.click_and_wait("#oidc-login");
    assert_eq!(
        browser.current_url(),
        format!("{}/avvikelser?status=ny", app.base),
        "{}",
        browser.source()
    );
    assert!(browser.source().contains("anna.avd1"), "logged in as anna.avd1");
    browser.screenshot("oidc-inloggad");
    assert_eq!(issuer.tokens_issued(), 1);
}
