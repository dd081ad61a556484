//! The OpenAPI document is generated from the code and matches the routes
//! the handlers declare: every route is documented, every documented
//! operation answers (none is an unknown route).

use std::collections::BTreeSet;

use crate::helpers::{spawn_app, Backend};

crate::on_both!(the_openapi_document_describes_exactly_the_routes_that_exist);

/// (METHOD, path) of every `#[get]`, `#[post]` and `#[delete]` handler in
/// the API modules (mounted under /api/v1) and in `ops.rs` (at the root).
fn declared_routes() -> BTreeSet<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut files: Vec<(std::path::PathBuf, &str)> = std::fs::read_dir(root.join("api"))
        .unwrap()
        .map(|e| (e.unwrap().path(), "/api/v1"))
        .collect();
    files.push((root.join("ops.rs"), ""));
    let mut out = BTreeSet::new();
    for (file, prefix) in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines().map(str::trim) {
            for method in ["get", "post", "delete"] {
                if let Some(rest) = line.strip_prefix(&format!("#[{method}(\"")) {
                    let path = rest.split('"').next().unwrap();
                    out.insert((method.to_uppercase(), format!("{prefix}{path}")));
                }
            }
        }
    }
    out
}

fn the_openapi_document_describes_exactly_the_routes_that_exist(b: Backend) {
    let app = spawn_app(b);
    assert_eq!(app.request("GET", "/api/v1/openapi.json", None, None).status, 401);
    let doc = app.get("/api/v1/openapi.json").json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "delete", "put", "patch"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let declared = declared_routes();
    assert!(declared.len() >= 19, "{declared:?}");
    assert_eq!(documented, declared, "the document and the handlers disagree");
    // Every documented operation is a route the server knows: an unknown
    // route would answer actix's empty 404, ours always have a JSON body.
    for (method, path) in &documented {
        let concrete = path.replace("{id}", "1");
        let body = (method != "GET").then_some(("application/json", "{}"));
        let r = app.request(method, &concrete, Some(&app.admin.clone()), body);
        assert!(
            !(r.status == 404 && r.body.is_empty()),
            "{method} {concrete} is documented but no route answers"
        );
    }
    // The request bodies people send are described.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in ["StatusRequest", "CommentRequest", "AssigneeRequest", "LoginRequest"] {
        assert!(schemas.contains_key(name), "{name} missing");
    }
    assert!(schemas["StatusRequest"]["properties"]["atgard"].is_object());
}
