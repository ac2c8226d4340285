//! The `technic` command (see the library's `main`).

fn main() -> std::process::ExitCode {
    technic_cli::main()
}
