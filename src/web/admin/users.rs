//! The people for admins (`/anvandare`): the users with role, units,
//! HSA-id and lock-out; create one with a generated password, give a new
//! password, change role, units or HSA-id, disable.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{admin_form, admin_user, field, unit_list};
use crate::audit::report::local_text;
use crate::domain::Role;
use crate::store::users;
use crate::web::error::{AppError, ErrorCode};
use crate::web::pages::{blocking, error_page, role_text, see_other, PageUser, Pages};
use crate::web::AppState;

async fn users_page(
    state: &web::Data<AppState>,
    pages: &Pages,
    user: &PageUser,
    status: StatusCode,
    extra: Value,
) -> HttpResponse {
    let st = state.clone();
    let list = match blocking(move || {
        let mut conn = st.pool.get()?;
        Ok(users::list(&mut conn)?)
    })
    .await
    {
        Ok(l) => l,
        Err(e) => return error_page(pages, Some(user), &e),
    };
    let now = chrono::Utc::now().naive_utc();
    let rows: Vec<Value> = list
        .iter()
        .map(|u| {
            let state = match (u.disabled, u.locked_until) {
                (true, _) => "avstängd".to_string(),
                (false, Some(t)) if t > now => format!("låst till {}", local_text(t)),
                _ => "aktiv".to_string(),
            };
            let role = Role::parse(&u.role).map_or(u.role.clone(), |r| role_text(r).to_string());
            json!({"id": u.id, "username": u.username, "role": role, "role_id": u.role, "units": u.units.join(", "),
                   "email": u.email, "hsa_id": u.hsa_id, "state": state, "disabled": u.disabled,
                   "no_units": u.units.is_empty() && u.role == Role::Handlaggare.as_str()})
        })
        .collect();
    let mut data = json!({"users": rows});
    if let (Some(o), Value::Object(more)) = (data.as_object_mut(), extra) {
        o.extend(more);
    }
    pages.render(status, "users", "Användare", Some(user), data)
}

#[get("/anvandare")]
pub(super) async fn users_get(state: web::Data<AppState>, pages: web::Data<Pages>, req: HttpRequest) -> HttpResponse {
    match admin_user(&state, &pages, &req, &[Role::Admin]).await {
        Ok(user) => users_page(&state, &pages, &user, StatusCode::OK, json!({})).await,
        Err(r) => r,
    }
}

#[post("/anvandare")]
pub(super) async fn users_create(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let user = match admin_form(&state, &pages, &req, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let username = form.get("username").map(|s| s.trim().to_string()).unwrap_or_default();
    let role = form.get("role").and_then(|r| Role::parse(r));
    let unit_ids = unit_list(&form);
    let email = field(&form, "email");
    let st = state.clone();
    let name = username.clone();
    let result = blocking(move || {
        let role = role.ok_or_else(|| AppError::new(ErrorCode::Unprocessable, "välj en roll"))?;
        let password = users::generate_password()?;
        let mut conn = st.pool.get()?;
        users::create(&mut conn, &name, &password, role, &unit_ids, email.as_deref())
            .map_err(|e| AppError::new(ErrorCode::Unprocessable, e.to_string()))?;
        Ok(password)
    })
    .await;
    match result {
        Ok(password) => {
            users_page(
                &state,
                &pages,
                &user,
                StatusCode::OK,
                json!({"password": {"user": username, "value": password}}),
            )
            .await
        }
        Err(e) if e.code == ErrorCode::Unprocessable => {
            users_page(
                &state,
                &pages,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": format!("Användaren skapades inte: {}", e.message)}),
            )
            .await
        }
        Err(e) => error_page(&pages, Some(&user), &e),
    }
}

fn username_of(conn: &mut crate::store::DbConn, id: i64) -> Result<String, AppError> {
    users::get(conn, id)?
        .map(|u| u.username)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, "ingen sådan användare"))
}

#[post("/anvandare/{id}/losenord")]
pub(super) async fn users_password(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let user = match admin_form(&state, &pages, &req, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let id = path.into_inner();
    let st = state.clone();
    let result = blocking(move || {
        let mut conn = st.pool.get()?;
        let name = username_of(&mut conn, id)?;
        let password = users::generate_password()?;
        users::set_password(&mut conn, &name, &password)?;
        Ok((name, password))
    })
    .await;
    match result {
        Ok((name, password)) => {
            users_page(
                &state,
                &pages,
                &user,
                StatusCode::OK,
                json!({"password": {"user": name, "value": password}}),
            )
            .await
        }
        Err(e) => error_page(&pages, Some(&user), &e),
    }
}

#[post("/anvandare/{id}/andra")]
pub(super) async fn users_change(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let user = match admin_form(&state, &pages, &req, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let id = path.into_inner();
    let role = form.get("role").and_then(|r| Role::parse(r));
    if user.caller.user_id == Some(id) && role.is_some_and(|r| r != Role::Admin) {
        let e = AppError::new(ErrorCode::Conflict, "du kan inte ta bort din egen administratörsroll");
        return error_page(&pages, Some(&user), &e);
    }
    let units = unit_list(&form);
    let hsa_id = field(&form, "hsa_id");
    let st = state.clone();
    let result = blocking(move || {
        let mut conn = st.pool.get()?;
        let current =
            users::get(&mut conn, id)?.ok_or_else(|| AppError::new(ErrorCode::NotFound, "ingen sådan användare"))?;
        let change = users::Change {
            role: Some(role.ok_or_else(|| AppError::new(ErrorCode::Unprocessable, "välj en roll"))?),
            // An empty field for a user who has no units leaves it so.
            units: (!(units.is_empty() && current.units.is_empty())).then_some(units),
            hsa_id: Some(hsa_id),
        };
        users::update(&mut conn, &current.username, &change)
            .map_err(|e| AppError::new(ErrorCode::Unprocessable, e.to_string()))?;
        Ok(())
    })
    .await;
    match result {
        Ok(()) => see_other("/anvandare"),
        Err(e) if e.code == ErrorCode::Unprocessable => {
            users_page(
                &state,
                &pages,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": format!("Användaren ändrades inte: {}", e.message)}),
            )
            .await
        }
        Err(e) => error_page(&pages, Some(&user), &e),
    }
}

#[post("/anvandare/{id}/stang-av")]
pub(super) async fn users_disable(
    state: web::Data<AppState>,
    pages: web::Data<Pages>,
    req: HttpRequest,
    path: web::Path<i64>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let user = match admin_form(&state, &pages, &req, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let id = path.into_inner();
    if user.caller.user_id == Some(id) {
        let e = AppError::new(ErrorCode::Conflict, "du kan inte stänga av dig själv");
        return error_page(&pages, Some(&user), &e);
    }
    let st = state.clone();
    match blocking(move || {
        let mut conn = st.pool.get()?;
        let name = username_of(&mut conn, id)?;
        users::disable(&mut conn, &name)?;
        Ok(())
    })
    .await
    {
        Ok(()) => see_other("/anvandare"),
        Err(e) => error_page(&pages, Some(&user), &e),
    }
}
