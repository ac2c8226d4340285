//! The admin token at start-up: an empty one is refused (exit 2 with the reason) by `technic serve` and
//! by `technic-http`, from the flag and from `TECHNIC_ADMIN_TOKEN`, before anything is bound.

use std::process::Command;

use super::{command, stderr};

fn server() -> Command {
    let data = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("technic-http-auth-{}", std::process::id()));
    let mut c = Command::new(env!("CARGO_BIN_EXE_technic-http"));
    c.env("XDG_DATA_HOME", data).env_remove("TECHNIC_STORE");
    c
}

#[test]
fn an_empty_admin_token_is_refused_at_start_up() {
    let cases: [(&str, Command); 2] = [("technic serve", command()), ("technic-http", server())];
    for (name, base) in cases {
        for (flag, env) in [
            (Some(""), None),
            (Some("   "), None),
            (None, Some("")),
            (Some("two words"), None),
        ] {
            let mut c = Command::new(base.get_program());
            c.envs(base.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
            if name == "technic serve" {
                c.arg("serve");
            }
            c.args(["--no-store", "--no-warm", "--port", "0"])
                .env_remove("TECHNIC_ADMIN_TOKEN");
            if let Some(f) = flag {
                c.arg(format!("--admin-token={f}"));
            }
            if let Some(e) = env {
                c.env("TECHNIC_ADMIN_TOKEN", e);
            }
            // Refused before binding: the command ends at once (a server that started would run on).
            let o = c.output().expect("the server command runs");
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{name} {flag:?} {env:?}: {err}");
            assert!(err.contains("admin token"), "{name} {flag:?} {env:?}: {err}");
        }
    }
}
