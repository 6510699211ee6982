//! `keelson user …` and `keelson token …`: operator accounts and API tokens from the command
//! line (same `--config`/`--data-dir`/`--database-url` as `serve`). Every change is audited
//! with the actor `cli:<login name>`.

use std::io::BufRead;

use anyhow::{bail, Context};
use serde_json::json;

use crate::access;
use crate::config::Config;

/// What to do.
pub enum UserCommand {
    Add {
        name: String,
        role: String,
        tenant: Option<String>,
        password_stdin: bool,
    },
    Passwd {
        name: String,
        password_stdin: bool,
    },
    Disable(String),
    Enable(String),
    List,
}

pub enum TokenCommand {
    Create {
        name: String,
        role: String,
        tenant: Option<String>,
        expires_in_days: Option<u32>,
    },
    List,
    Revoke(String),
}

fn actor() -> String {
    let who = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{who}")
}

async fn open(cfg: &Config) -> anyhow::Result<store::Store> {
    crate::app::private_umask();
    crate::files::create_private_dir(&cfg.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    let url = cfg.effective_database_url();
    let store = store::Store::open(&url, store::StoreOptions::default())
        .await
        .with_context(|| format!("opening database {}", crate::app::redact_url(&url)))?;
    access::seed_roles(&store).await?;
    Ok(store)
}

/// The password: one line from standard input, or a generated one (printed once).
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((access::random_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    access::check_password_rules(&pw).map_err(anyhow::Error::msg)?;
    Ok((pw, false))
}

async fn audit(
    store: &store::Store,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    store
        .append_audit(store::NewAudit {
            actor: actor(),
            action: action.into(),
            target: target.into(),
            outcome: "ok".into(),
            detail,
            ..Default::default()
        })
        .await?;
    Ok(())
}

pub fn user(cfg: Config, cmd: UserCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let store = open(&cfg).await?;
        match cmd {
            UserCommand::Add {
                name,
                role,
                tenant,
                password_stdin,
            } => {
                access::check_name("user", &name).map_err(anyhow::Error::msg)?;
                if store.get_role(&role).await?.is_none() {
                    bail!("no role {role} (see `keelson user list` and the NBI's /api/v1/roles)");
                }
                if store.get_user_auth(&name).await?.is_some() {
                    bail!("user {name} exists");
                }
                let (pw, generated) = password(password_stdin)?;
                let hash = access::hash_password(&pw).map_err(anyhow::Error::msg)?;
                store
                    .create_user(&name, &hash, &role, tenant.as_deref())
                    .await?;
                audit(
                    &store,
                    "user.create",
                    &name,
                    json!({ "role": role, "tenant": tenant }),
                )
                .await?;
                if generated {
                    println!("created user {name} (role {role}); password: {pw}");
                } else {
                    println!("created user {name} (role {role})");
                }
            }
            UserCommand::Passwd {
                name,
                password_stdin,
            } => {
                let (pw, generated) = password(password_stdin)?;
                let hash = access::hash_password(&pw).map_err(anyhow::Error::msg)?;
                let update = store::UserUpdate {
                    password_hash: Some(hash),
                    ..Default::default()
                };
                if store.update_user(&name, update).await?.is_none() {
                    bail!("no user {name}");
                }
                audit(&store, "user.password", &name, json!({})).await?;
                if generated {
                    println!("new password of {name}: {pw}");
                } else {
                    println!("password of {name} changed");
                }
            }
            UserCommand::Disable(name) => set_disabled(&store, &name, true).await?,
            UserCommand::Enable(name) => set_disabled(&store, &name, false).await?,
            UserCommand::List => {
                println!(
                    "{:<24} {:<12} {:<12} {:<9} LAST SIGN-IN",
                    "NAME", "ROLE", "TENANT", "STATE"
                );
                for u in store.list_users(None).await? {
                    println!(
                        "{:<24} {:<12} {:<12} {:<9} {}",
                        u.name,
                        u.role,
                        u.tenant.as_deref().unwrap_or("-"),
                        if u.disabled { "disabled" } else { "enabled" },
                        u.last_login_at.map_or("-".to_string(), |t| t.to_rfc3339()),
                    );
                }
            }
        }
        Ok(())
    })
}

async fn set_disabled(store: &store::Store, name: &str, disabled: bool) -> anyhow::Result<()> {
    let update = store::UserUpdate {
        disabled: Some(disabled),
        ..Default::default()
    };
    if store.update_user(name, update).await?.is_none() {
        bail!("no user {name}");
    }
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    audit(store, action, name, json!({})).await?;
    println!(
        "user {name} {}",
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(())
}

pub fn token(cfg: Config, cmd: TokenCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let store = open(&cfg).await?;
        match cmd {
            TokenCommand::Create {
                name,
                role,
                tenant,
                expires_in_days,
            } => {
                access::check_name("token", &name).map_err(anyhow::Error::msg)?;
                if store.get_role(&role).await?.is_none() {
                    bail!("no role {role}");
                }
                let expires = crate::admin::token_expiry(expires_in_days);
                let (secret, row) = match crate::admin::issue_token(
                    &store,
                    &name,
                    &role,
                    tenant.clone(),
                    &actor(),
                    expires,
                )
                .await
                {
                    Ok(x) => x,
                    Err(e) if e.is_unique_violation() => bail!("a token named {name} exists"),
                    Err(e) => return Err(e.into()),
                };
                audit(
                    &store,
                    "token.create",
                    &name,
                    json!({ "role": role, "tenant": tenant, "id": row.id }),
                )
                .await?;
                // The secret alone on stdout, for scripts: TOKEN=$(keelson token create ...).
                println!("{secret}");
                eprintln!(
                    "token {name} (id {}, role {role}{}) created; it is shown only this once",
                    row.id,
                    row.expires_at
                        .map(|e| format!(", expires {}", e.to_rfc3339()))
                        .unwrap_or_default()
                );
            }
            TokenCommand::List => {
                println!(
                    "{:<36} {:<20} {:<12} {:<12} {:<10} STATE",
                    "ID", "NAME", "PREFIX", "ROLE", "TENANT"
                );
                let now = chrono::Utc::now();
                for t in store.list_tokens(None).await? {
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else if t.is_live(now) {
                        "live"
                    } else {
                        "expired"
                    };
                    println!(
                        "{:<36} {:<20} {:<12} {:<12} {:<10} {state}",
                        t.id,
                        t.name,
                        t.prefix,
                        t.role,
                        t.tenant.as_deref().unwrap_or("-"),
                    );
                }
            }
            TokenCommand::Revoke(id) => {
                if store.revoke_token(&id).await?.is_none() {
                    bail!("no token {id}");
                }
                audit(&store, "token.revoke", &id, json!({})).await?;
                println!("token {id} revoked");
            }
        }
        Ok(())
    })
}
