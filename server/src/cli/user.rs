//! `mirrorset user add` and `mirrorset token create`: run on the server's machine, against its
//! database, so the first accounts and tokens can exist before anyone can sign in.
use std::io::BufRead;

use app::api_types::Role;
use clap::{Args, Subcommand};

use super::serve::DbArgs;
use crate::auth::password::{hash_password, random_secret, validate_new_password};
use crate::store;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add(UserAddArgs),
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    #[arg(long)]
    pub username: String,
    /// admin, lead or labeler.
    #[arg(long, default_value = "labeler")]
    pub role: String,
    /// The password (visible in the process list: prefer --password-stdin). Without either,
    /// one is generated and printed.
    #[arg(long, env = "MIRRORSET_USER_PASSWORD", conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Add the user to these projects (ids, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub projects: Vec<i64>,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user and print its secret (once).
    Create(TokenCreateArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    #[arg(long)]
    pub username: String,
    /// A name to recognise the token by.
    #[arg(long, default_value = "cli")]
    pub name: String,
    /// The token stops working this many days from now (default: never).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=crate::api::users::MAX_TOKEN_DAYS))]
    pub expires_in_days: Option<i64>,
    #[command(flatten)]
    pub db: DbArgs,
}

pub async fn add_user(args: UserAddArgs) -> anyhow::Result<()> {
    let role = Role::parse(&args.role).ok_or_else(|| anyhow::anyhow!("unknown role {:?}: use admin, lead or labeler", args.role))?;
    crate::api::users::validate_username(&args.username).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (password, generated) = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        (line.trim_end_matches(['\n', '\r']).to_string(), false)
    } else if let Some(p) = args.password {
        (p, false)
    } else {
        (random_secret("")[..20].to_string(), true)
    };
    validate_new_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = args.db.connect().await?;
    for &pid in &args.projects {
        store::projects::get_project(&db, pid).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let hash = hash_password(password.clone()).await?;
    let user = store::users::create_user(&db, &args.username, &hash, role, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    for &pid in &args.projects {
        store::users::add_member(&db, pid, user.id, None).await?;
    }
    println!("Created {} `{}` (id {}).", role.as_str(), user.username, user.id);
    if generated {
        println!("Password: {password}");
    }
    Ok(())
}

pub async fn create_token(args: TokenCreateArgs) -> anyhow::Result<()> {
    let db = args.db.connect().await?;
    let user = store::users::find_user_by_username(&db, &args.username)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user {:?}", args.username))?;
    let expires_at = args.expires_in_days.map(|days| store::now_ms() + days * 86_400_000);
    let created = crate::api::users::issue_token(&db, user.id, &args.name, expires_at)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The secret alone on stdout, so `TOKEN=$(mirrorset token create ...)` works.
    eprintln!("Token {:?} for {} (shown once; use it as `Authorization: Bearer <token>`):", args.name, user.username);
    println!("{}", created.secret);
    Ok(())
}
