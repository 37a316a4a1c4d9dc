#[tokio::main]
async fn main() -> std::process::ExitCode {
    match revoker::cli::main().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("revoker: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
