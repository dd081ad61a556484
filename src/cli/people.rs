//! API tokens and the people who log in: `svu-vakt token create` and
//! `user create | update | disable | passwd`. A password is read from
//! standard input, or generated and printed once.

use crate::app_state;
use crate::config::Config;
use crate::store::tokens::{self, Role};

pub fn token_create(config: &Config, role: &str, unit: Option<&str>, label: Option<&str>) -> anyhow::Result<()> {
    let role = Role::parse(role)
        .ok_or_else(|| anyhow::anyhow!("okänd roll `{role}`: admin, ledning, handlaggare eller inlasning"))?;
    let state = app_state(config)?;
    let token = tokens::create(&mut *state.pool.get()?, role, unit, label)?;
    println!("Ny token för rollen {} (visas bara nu):\n{token}", role.as_str());
    Ok(())
}

/// The password from standard input (first line), or a generated one that is printed.
fn password_from_stdin() -> anyhow::Result<(String, bool)> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        let pw = line.trim_end_matches(['\r', '\n']).to_string();
        if !pw.is_empty() {
            return Ok((pw, false));
        }
    }
    Ok((crate::store::users::generate_password()?, true))
}

pub fn user_create(
    config: &Config,
    username: &str,
    role: &str,
    units: &[String],
    email: Option<&str>,
    hsa_id: Option<&str>,
) -> anyhow::Result<()> {
    let role = person_role(role)?;
    if let Some(h) = hsa_id {
        anyhow::ensure!(
            crate::store::users::valid_hsa_id(h),
            "HSA-id {h} har fel form (t.ex. SE2321000016-1234)"
        );
    }
    let state = app_state(config)?;
    let (password, generated) = password_from_stdin()?;
    let mut conn = state.pool.get()?;
    crate::store::users::create(&mut conn, username, &password, role, units, email)?;
    if let Some(h) = hsa_id {
        let change = crate::store::users::Change {
            hsa_id: Some(Some(h.to_string())),
            ..Default::default()
        };
        if let Err(e) = crate::store::users::update(&mut conn, username, &change) {
            // Made but not linked: say so, and how to finish.
            anyhow::bail!(
                "användaren {username} skapades men fick inget HSA-id: {e:#} (rätta med `svu-vakt user update`)"
            );
        }
    }
    println!("Användaren {username} ({}) är skapad.", role.as_str());
    if generated {
        println!("Lösenord (visas bara nu):\n{password}");
    }
    Ok(())
}

fn person_role(role: &str) -> anyhow::Result<Role> {
    Role::parse(role)
        .filter(|r| *r != Role::Inlasning)
        .ok_or_else(|| anyhow::anyhow!("okänd roll `{role}` för en person: admin, ledning eller handlaggare"))
}

pub fn user_update(
    config: &Config,
    username: &str,
    role: Option<&str>,
    units: Vec<String>,
    hsa_id: Option<Option<String>>,
) -> anyhow::Result<()> {
    let change = crate::store::users::Change {
        role: role.map(person_role).transpose()?,
        units: (!units.is_empty()).then_some(units),
        hsa_id,
    };
    anyhow::ensure!(
        change.role.is_some() || change.units.is_some() || change.hsa_id.is_some(),
        "inget att ändra: ange --role, --unit, --hsa-id eller --no-hsa-id"
    );
    let state = app_state(config)?;
    let mut conn = state.pool.get()?;
    crate::store::users::update(&mut conn, username, &change)?;
    let u = crate::store::users::list(&mut conn)?
        .into_iter()
        .find(|u| u.username == username)
        .ok_or_else(|| anyhow::anyhow!("ingen användare heter {username}"))?;
    println!(
        "Användaren {username}: {}, enheter: {}, HSA-id: {}.",
        u.role,
        if u.units.is_empty() {
            "inga".to_string()
        } else {
            u.units.join(", ")
        },
        u.hsa_id.as_deref().unwrap_or("inget")
    );
    Ok(())
}

pub fn user_disable(config: &Config, username: &str) -> anyhow::Result<()> {
    let state = app_state(config)?;
    crate::store::users::disable(&mut *state.pool.get()?, username)?;
    println!("Användaren {username} är avstängd och utloggad.");
    Ok(())
}

pub fn user_passwd(config: &Config, username: &str) -> anyhow::Result<()> {
    let state = app_state(config)?;
    let (password, generated) = password_from_stdin()?;
    crate::store::users::set_password(&mut *state.pool.get()?, username, &password)?;
    println!("Nytt lösenord för {username}; tidigare inloggningar är avslutade.");
    if generated {
        println!("Lösenord (visas bara nu):\n{password}");
    }
    Ok(())
}
