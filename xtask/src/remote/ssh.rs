//! The connection to a host: `ssh` with the words to run there, and the words that write
//! files on the host from standard input (`dd`: no shell, no redirection).

use crate::cmd::Cmd;
use crate::project::Project;

/// `ssh [-F CONFIG] OPTIONS HOST -- 'ARG' 'ARG'...`: never prompting, and sharing one
/// connection per host where it can (ControlMaster, its socket in $HOME/.ssh).
pub fn ssh<S: AsRef<str>>(p: &Project, host: &str, remote: &[S]) -> Cmd {
    let mut cmd = p.cmd("ssh");
    if !p.config.deploy.ssh_config.is_empty() {
        cmd = cmd.args(&["-F", &p.config.deploy.ssh_config]);
    }
    // A dead connection is noticed within 15 s, not when TCP gives up.
    cmd = cmd.args(&["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5"]);
    if let Some(dir) = &p.facts.ssh_sockets {
        let path = format!("ControlPath={}/rs-%C", dir.display());
        cmd = cmd.args(&["-o", "ControlMaster=auto", "-o", &path, "-o", "ControlPersist=60"]);
    }
    cmd.args(&[host, "--"]).remote(remote)
}

/// Writes standard input to `path` on the host, replacing it.
pub fn write_file(path: &str) -> Vec<String> {
    words(&["dd", &format!("of={path}"), "status=none"])
}

/// Appends standard input to `path` on the host.
pub fn append_file(path: &str) -> Vec<String> {
    words(&["dd", &format!("of={path}"), "oflag=append", "conv=notrunc", "status=none"])
}

/// Words as owned strings.
pub fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_never_prompts_shares_one_connection_and_quotes_every_remote_word() {
        let p = crate::project::fixture();
        let cmd = ssh(&p, "recordsponge", &["cat", "a b"]);
        assert_eq!(cmd.program, "ssh");
        assert_eq!(
            cmd.argv(),
            [
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "ServerAliveInterval=5",
                "-o",
                "ControlMaster=auto",
                "-o",
                "ControlPath=/home/dev/.ssh/rs-%C",
                "-o",
                "ControlPersist=60",
                "recordsponge",
                "--",
                "cat 'a b'"
            ]
        );
        let mut p = p;
        p.config.deploy.ssh_config = "/tmp/fleet/ssh_config".into();
        p.facts.ssh_sockets = None;
        let args = ssh(&p, "h", &["true"]).argv();
        assert_eq!(args[..2], ["-F", "/tmp/fleet/ssh_config"]);
        assert!(!args.iter().any(|a| a.starts_with("Control")), "{args:?}");
    }

    #[test]
    fn files_are_written_and_appended_by_dd_from_stdin() {
        assert_eq!(write_file("/etc/x.conf"), ["dd", "of=/etc/x.conf", "status=none"]);
        assert_eq!(append_file("/var/l.log"), ["dd", "of=/var/l.log", "oflag=append", "conv=notrunc", "status=none"]);
    }
}
