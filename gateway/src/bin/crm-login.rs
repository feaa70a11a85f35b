//! `crm-login`: signs in through the gateway's real login route and prints the access token.
//!
//! ```text
//! CRM_PASSWORD=… crm-login --gateway http://127.0.0.1:8080 --user admin
//! ```
//!
//! The password comes from `CRM_PASSWORD` or `--password-file`, never from the command line
//! (where `ps` would show it). `./dev token USER` uses this with the dev users' passwords.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "crm-login",
    about = "Sign in through the CRM gateway and print the access token"
)]
struct Args {
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    #[arg(long)]
    user: String,
    /// A file whose first line is the password (else the CRM_PASSWORD variable).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Print the whole token response (JSON) instead of the access token.
    #[arg(long)]
    json: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let password = match &args.password_file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("reading {}", file.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        None => {
            std::env::var("CRM_PASSWORD").context("set CRM_PASSWORD or pass --password-file")?
        }
    };
    let url = format!("{}/api/v1/auth/login", args.gateway.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .json(&serde_json::json!({ "username": args.user, "password": password }))
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.context("reading the response")?;
    if !status.is_success() {
        bail!(
            "sign-in failed ({status}): {}",
            body["detail"].as_str().unwrap_or("no detail")
        );
    }
    if args.json {
        println!("{body}");
    } else {
        let token = body["access_token"]
            .as_str()
            .context("no access_token in the response")?;
        println!("{token}");
    }
    Ok(())
}
