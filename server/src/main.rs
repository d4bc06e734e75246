//! `billing`: see `billing --help`.

fn main() -> std::process::ExitCode {
    server::cli::main()
}
