//! The `technic-http` command: the HTTP server with `technic serve`'s flags (see the library's
//! `server_main`).

fn main() -> std::process::ExitCode {
    technic_cli::server_main()
}
