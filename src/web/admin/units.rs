//! The unit register for admins (`/enheter`): the units, and a form that
//! registers a unit or changes one (its e-mail and chef's e-mail among
//! them) with the same validation as an import.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::{admin_form, admin_user};
use crate::domain::{Role, Unit};
use crate::store::units;
use crate::web::error::AppError;
use crate::web::pages::{blocking, error_page, see_other, PageUser, Pages};
use crate::web::AppState;

fn unit_json(u: &Unit) -> Value {
    json!({"id": u.id.0, "name": u.name, "kind": u.kind.as_str(), "huvudman": u.huvudman,
           "parent": u.parent.as_ref().map(|p| p.0.clone()), "email": u.email,
           "chef_email": u.chef_email, "storhelg": u.storhelg})
}

async fn units_page(
    state: &web::Data<AppState>,
    pages: &Pages,
    user: &PageUser,
    status: StatusCode,
    edit: Option<String>,
    extra: Value,
) -> HttpResponse {
    let st = state.clone();
    let list = match blocking(move || {
        let mut conn = st.pool.get()?;
        Ok(units::all(&mut conn)?)
    })
    .await
    {
        Ok(l) => l,
        Err(e) => return error_page(pages, Some(user), &e),
    };
    let editing = edit
        .and_then(|id| list.iter().find(|u| u.id.0 == id).map(unit_json))
        .unwrap_or_else(|| json!({"kind": "slutenvard", "storhelg": true}));
    let mut data = json!({"units": list.iter().map(unit_json).collect::<Vec<_>>(), "edit": editing});
    if let (Some(o), Value::Object(more)) = (data.as_object_mut(), extra) {
        o.extend(more);
    }
    pages.render(status, "units", "Enheter", Some(user), data)
}

#[get("/enheter")]
pub(super) async fn units_get(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let user = match admin_user(&state, &pages, &req, &[Role::Admin]).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let notice = query.get("sparad").map(|id| format!("Enheten {id} är sparad."));
    units_page(
        &state,
        &pages,
        &user,
        StatusCode::OK,
        query.get("andra").cloned(),
        json!({"notice": notice}),
    )
    .await
}

/// Registers or changes one unit from the form, with the same validation
/// as an import (`Unit::from_json`); an empty e-mail field clears it.
#[post("/enheter")]
pub(super) async fn units_post(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let user = match admin_form(&state, &pages, &req, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut obj = Map::new();
    for key in [
        "id",
        "name",
        "kind",
        "huvudman",
        "parent",
        "email",
        "chef_email",
        "storhelg",
    ] {
        obj.insert(
            key.into(),
            Value::String(form.get(key).map(|v| v.trim().to_string()).unwrap_or_default()),
        );
    }
    let unit = match Unit::from_json(&obj, 1) {
        Ok(u) => u,
        Err(errors) => {
            let text = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            let edit = form.get("id").cloned();
            return units_page(
                &state,
                &pages,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                edit,
                json!({"error": format!("Enheten sparades inte: {text}")}),
            )
            .await;
        }
    };
    let id = unit.id.0.clone();
    let st = state.clone();
    match blocking(move || {
        let mut conn = st.pool.get()?;
        Ok(units::upsert(&mut conn, &[unit]))
    })
    .await
    {
        Ok(Ok(_)) => see_other(&format!("/enheter?sparad={}", crate::web::pages::encode(&id))),
        Ok(Err(units::UnitsError::Cycle(cycle))) => {
            let text = format!(
                "Enheten sparades inte: överordnad enhet skulle bilda en slinga ({})",
                cycle.join(" → ")
            );
            units_page(
                &state,
                &pages,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(id),
                json!({"error": text}),
            )
            .await
        }
        Ok(Err(units::UnitsError::Db(e))) => error_page(&pages, Some(&user), &AppError::from(e)),
        Err(e) => error_page(&pages, Some(&user), &e),
    }
}
