//! `crm-token`: prints an RS256 JWT the gateway accepts, for local development and tests.
//!
//! ```text
//! crm-token --private-key dev-private.pem --issuer crm-dev --audience crm-api --user admin
//! ```
//!
//! `sub` is the user if it is a UUID, else a name-based UUID of it, so the same `--user` always
//! gives the same subject (see `crm_gateway::security::token`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use crm_gateway::security::token::{TokenRequest, mint};

#[derive(Debug, Parser)]
#[command(
    name = "crm-token",
    about = "Print a development JWT for the CRM gateway"
)]
struct Args {
    /// RSA private key in PEM form.
    #[arg(long, value_name = "FILE")]
    private_key: PathBuf,
    /// The `iss` claim (the gateway's `auth.issuer`).
    #[arg(long)]
    issuer: String,
    /// The `aud` claim (the gateway's `auth.audience`).
    #[arg(long)]
    audience: String,
    /// A user name or UUID.
    #[arg(long)]
    user: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl_secs: u64,
    /// The `kid` header.
    #[arg(long, default_value = "dev")]
    kid: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pem = std::fs::read(&args.private_key)
        .with_context(|| format!("reading {}", args.private_key.display()))?;
    let token = mint(
        &pem,
        &TokenRequest {
            user: &args.user,
            issuer: &args.issuer,
            audience: &args.audience,
            ttl_secs: args.ttl_secs,
            kid: Some(&args.kid),
        },
    )?;
    println!("{token}");
    Ok(())
}
