//! `soku admin user ...`: creating users, their role, and what an operator does for a user who
//! cannot help themselves: a new password, and signing them out everywhere.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::json;
use soku_core::audit::AuditKind;
use soku_core::model::{Role, User};
use soku_core::{Secret, Store, StoreError};
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user and print its id.
    Create {
        #[arg(long)]
        email: String,
        /// The user id (an ID token's `sub`); generated when omitted.
        #[arg(long)]
        uid: Option<String>,
        /// A password for signing in to the dashboard (at least 10 characters; kept as an
        /// argon2id hash). `-` reads it from the first line of standard input.
        #[arg(long)]
        password: Option<Secret<String>>,
    },
    /// Make a user an admin, or a user again.
    SetRole {
        #[arg(long)]
        uid: String,
        /// `admin` or `user`.
        #[arg(long)]
        role: String,
    },
    /// Give a user a new dashboard password (a forgotten one, or one that leaked), and sign
    /// them out everywhere: every dashboard session ends and every ID token signed in before
    /// now is refused, on every server on this database within 2 seconds. Their API keys are
    /// left alone (`soku admin key revoke` ends those).
    SetPassword {
        #[arg(long)]
        uid: String,
        /// The new password (at least 10 characters). `-` reads it from the first line of
        /// standard input, which keeps it out of the shell's history and the process list.
        #[arg(long)]
        password: Secret<String>,
    },
    /// Sign a user out everywhere, as the dashboard's "Sign out everywhere" does: every
    /// session ends and every ID token signed in before now is refused, on every server on
    /// this database within 2 seconds. Their API keys are left alone.
    SignOut {
        #[arg(long)]
        uid: String,
    },
}

fn db(e: StoreError) -> String {
    format!("database error: {e}")
}

pub(super) async fn execute(
    store: &Arc<dyn Store>,
    command: UserCommand,
    now: DateTime<Utc>,
) -> Result<String, String> {
    match command {
        UserCommand::Create {
            email,
            uid,
            password,
        } => create(store, &email, uid, password, now).await,
        UserCommand::SetRole { uid, role } => {
            let role = Role::parse(&role)
                .ok_or_else(|| format!("unknown role {role:?}: use admin or user"))?;
            if store.set_role(&uid, role).await.map_err(db)? {
                Ok(format!("{uid} is now {}", role.as_str()))
            } else {
                Err(format!("no user with id {uid:?}"))
            }
        }
        UserCommand::SetPassword { uid, password } => {
            let user = existing(store, &uid).await?;
            let Some(email) = user.email.as_deref() else {
                return Err(format!(
                    "{uid} has no email address, so it cannot sign in with a password"
                ));
            };
            if store
                .password_users(email)
                .await
                .map_err(db)?
                .iter()
                .any(|(other, _)| other.id != user.id)
            {
                return Err(format!(
                    "another user with email {email:?} has a password: sign-in by email would \
                     not know which one is meant"
                ));
            }
            let hash = crate::auth::passwords::hash(&read_password(password)?)?;
            if !store.set_password_hash(&user.id, &hash).await.map_err(db)? {
                return Err(format!("no user with id {uid:?}"));
            }
            let ended = sign_out(store, &user.id, "password_set", now).await?;
            Ok(format!(
                "{uid}: password set; signed out everywhere ({})",
                sessions(ended)
            ))
        }
        UserCommand::SignOut { uid } => {
            let user = existing(store, &uid).await?;
            let ended = sign_out(store, &user.id, "operator", now).await?;
            Ok(format!(
                "{uid}: signed out everywhere ({})",
                sessions(ended)
            ))
        }
    }
}

async fn create(
    store: &Arc<dyn Store>,
    email: &str,
    uid: Option<String>,
    password: Option<Secret<String>>,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let email = email.trim();
    if email.is_empty() || !email.contains('@') {
        return Err(format!("not an email address: {email:?}"));
    }
    let uid = match uid {
        Some(u) if u.trim().is_empty() || u.chars().count() > 128 => {
            return Err("--uid must be 1 to 128 characters".into());
        }
        Some(u) => u,
        None => soku_core::keys::random_id("", 28),
    };
    let password_hash = match password {
        None => None,
        Some(p) => {
            let p = read_password(p)?;
            if !store.password_users(email).await.map_err(db)?.is_empty() {
                return Err(format!(
                    "a user with email {email:?} has a password already"
                ));
            }
            Some(crate::auth::passwords::hash(&p)?)
        }
    };
    match store.create_user(&uid, Some(email), now).await {
        Ok(user) => {
            if let Some(hash) = password_hash {
                store.set_password_hash(&user.id, &hash).await.map_err(db)?;
            }
            Ok(user.id)
        }
        Err(StoreError::Conflict) => Err(format!("a user with id {uid:?} exists already")),
        Err(e) => Err(db(e)),
    }
}

async fn existing(store: &Arc<dyn Store>, uid: &str) -> Result<User, String> {
    store
        .get_user(uid)
        .await
        .map_err(db)?
        .ok_or_else(|| format!("no user with id {uid:?}"))
}

/// Ends every session of the user and their ID tokens signed in before `now`, recording one
/// `session.signed_out` event (when a session was ended) that says the operator did it and why.
async fn sign_out(
    store: &Arc<dyn Store>,
    uid: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64, String> {
    let mut draft = super::by_operator(AuditKind::SignedOut);
    draft.details["everywhere"] = json!(true);
    draft.details["reason"] = json!(reason);
    store
        .revoke_sessions(uid, None, now, &draft)
        .await
        .map_err(db)
}

fn sessions(ended: u64) -> String {
    match ended {
        1 => "1 session ended".to_owned(),
        n => format!("{n} sessions ended"),
    }
}

/// The password argument, or the first line of standard input for `-`.
fn read_password(arg: Secret<String>) -> Result<String, String> {
    let p = arg.expose().clone();
    if p != "-" {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
