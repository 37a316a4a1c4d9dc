//! `revoker-simulator`: one plain-HTTP server that plays MongoDB Atlas, Infisical and Onedata
//! Onezone for tests and the quickstart, keeps their state, records every call and injects
//! faults. See `docs/simulator.md`.
//!
//! It does not use the `revoker` library on purpose: it is an independent picture of the
//! providers, written from the shared specs, so that it can catch mistakes in the clients.

mod admin;
mod atlas;
mod calls;
mod conn;
mod digest;
mod faults;
mod infisical;
mod onezone;
mod server;
mod sim;
mod state;
mod util;

#[cfg(test)]
mod tests;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::conn::SimListener;
use crate::sim::Sim;
use crate::state::State;

/// How long in-flight requests may run after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Parser)]
#[command(
    name = "revoker-simulator",
    version,
    about = "Simulated MongoDB Atlas, Infisical and Onezone APIs for Revoker tests (plain HTTP)"
)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write the bound port (decimal, no newline) to this file once listening.
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// JSON state to start from (same shape as `PUT /_sim/state`); default: the built-in
    /// state, identical to examples/simulator-seed.json.
    #[arg(long)]
    seed_file: Option<PathBuf>,
    /// Allow a non-loopback --listen address. The simulator speaks plain HTTP and has an
    /// unauthenticated admin API: only do this inside an isolated test network.
    #[arg(long)]
    allow_non_loopback: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("revoker-simulator: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    if !cli.listen.ip().is_loopback() && !cli.allow_non_loopback {
        return Err(format!(
            "--listen {} is not a loopback address; pass --allow-non-loopback to accept that",
            cli.listen
        ));
    }
    let initial = match &cli.seed_file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read seed file {}: {e}", path.display()))?;
            State::from_json(&text).map_err(|e| format!("seed file {}: {e}", path.display()))?
        }
        None => State::default_seed().map_err(|e| format!("built-in seed: {e}"))?,
    };
    let listener = SimListener::bind(cli.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    let addr =
        axum::serve::Listener::local_addr(&listener).map_err(|e| format!("cannot read the bound address: {e}"))?;

    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
    }
    if let Some(path) = &cli.port_file {
        write_port_file(path, addr.port())?;
    }

    let sim = Arc::new(Sim::new(initial));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut server = tokio::spawn(server::serve(listener, sim, async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    }));
    tokio::select! {
        result = &mut server => {
            return match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("server failed: {e}")),
                Err(e) => Err(format!("server task failed: {e}")),
            };
        }
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(format!("server failed: {e}")),
        Ok(Err(e)) => Err(format!("server task failed: {e}")),
        Err(_) => {
            tracing::warn!("requests still running after {:?}; exiting anyway", SHUTDOWN_GRACE);
            Ok(())
        }
    }
}

/// Write the port atomically (temporary file, then rename) so readers never see half of it.
fn write_port_file(path: &Path, port: u16) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, port.to_string())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write port file {}: {e}", path.display()))
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
